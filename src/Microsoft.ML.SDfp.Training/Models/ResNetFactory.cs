namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>Builds ResNets from <see cref="ResNetOptions"/>.</summary>
public static class ResNetFactory
{
    /// <summary>
    /// Validates <paramref name="options"/> and builds the network with torchvision module names,
    /// freshly initialised (convs kaiming-normal fan-out, batch norm scale 1 / shift 0, linear
    /// uniform ±1/√in) from TorchSharp's global generator — call <c>torch.manual_seed</c> first for
    /// reproducible weights — and with <see cref="ResNetOptions.Quantization"/> applied.
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range; the message names the property and its value.</exception>
    public static ResNetModel Create(ResNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (ImageNetResNet.Supports(options.Architecture))
            return new ImageNetResNet(options);
        return new CifarResNet(options);
    }

    /// <summary>Whether <paramref name="architecture"/> is a CIFAR ResNet (20/32/56) rather than a torchvision ImageNet one.</summary>
    public static bool IsCifarStyle(ResNetArchitecture architecture) => CifarResNet.Supports(architecture);
}
