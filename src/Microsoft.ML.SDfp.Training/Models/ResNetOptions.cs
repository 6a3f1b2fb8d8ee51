namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>Everything <see cref="ResNetFactory.Create"/> needs to build a ResNet. Every default is listed on its property.</summary>
public sealed record ResNetOptions
{
    /// <summary>The network. Default <see cref="ResNetArchitecture.ResNet20"/> (small and fast on CPU).</summary>
    public ResNetArchitecture Architecture { get; init; } = ResNetArchitecture.ResNet20;

    /// <summary>Number of output classes (logits). At least 2. Default 10.</summary>
    public int NumClasses { get; init; } = 10;

    /// <summary>Channels of the input images: 1 (grey-scale) or 3 (RGB); any value ≥ 1 is accepted. Default 3.</summary>
    public int InputChannels { get; init; } = 3;

    /// <summary>
    /// ImageNet ResNets only: replace the 7×7 stride-2 stem and its max-pool by a 3×3 stride-1 conv
    /// without max-pool, so that small inputs such as 28×28 keep their resolution into the first
    /// stage. The stem conv keeps the name <c>conv1</c> (its weight becomes <c>[64, C, 3, 3]</c>).
    /// The CIFAR ResNets always have this stem and ignore the flag. Default false.
    /// </summary>
    public bool SmallImageStem { get; init; } = false;

    /// <summary>
    /// Initialise the last batch norm of every residual block with zero scale, so each block
    /// starts as the identity (Goyal et al. 2017; torchvision's <c>zero_init_residual</c>). Default false, as in torchvision.
    /// </summary>
    public bool ZeroInitResidual { get; init; } = false;

    /// <summary>Which layers are quantised and how. Default <see cref="QuantizationPolicy.Fp32"/>.</summary>
    public QuantizationPolicy Quantization { get; init; } = QuantizationPolicy.Fp32;

    /// <summary>Checks every property.</summary>
    /// <exception cref="ArgumentException">A property is out of range; the message names the property and its value.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Architecture))
            throw new ArgumentOutOfRangeException(nameof(Architecture), Architecture, $"ResNetOptions.Architecture {(int)Architecture} is not a known architecture.");
        if (NumClasses < 2)
            throw new ArgumentOutOfRangeException(nameof(NumClasses), NumClasses, $"ResNetOptions.NumClasses must be at least 2; got {NumClasses}.");
        if (InputChannels < 1)
            throw new ArgumentOutOfRangeException(nameof(InputChannels), InputChannels, $"ResNetOptions.InputChannels must be at least 1; got {InputChannels}.");
        if (Quantization is null)
            throw new ArgumentNullException(nameof(Quantization), "ResNetOptions.Quantization must not be null; use QuantizationPolicy.Fp32.");
        Quantization.Validate();
    }
}
