using Microsoft.ML.SDfp.Numerics.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>
/// torchvision's Bottleneck (ResNet v1.5): 1×1 reduce, 3×3 with the stride, 1×1 expand ×4, each
/// followed by batch norm, plus an identity or projection shortcut.
/// </summary>
/// <remarks>
/// The stride sits on the 3×3 conv, not on the first 1×1 as in the original paper, because
/// torchvision does so (it is measurably more accurate) and its weights assume it.
/// </remarks>
internal sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    /// <summary>Output channels per <c>planes</c>.</summary>
    public const int Expansion = 4;

    private readonly QuantizedConv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly QuantizedConv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly QuantizedConv2d conv3;
    private readonly BatchNorm2d bn3;
    private readonly Sequential? downsample;

    /// <param name="prefix">State-dict prefix of this block, e.g. <c>layer2.0</c>.</param>
    /// <param name="inPlanes">Input channels.</param>
    /// <param name="planes">Width of the 3×3 conv; the block outputs <c>4 × planes</c> channels.</param>
    /// <param name="stride">Stride of the 3×3 conv (and of the projection).</param>
    public Bottleneck(string prefix, long inPlanes, long planes, long stride) : base(nameof(Bottleneck))
    {
        conv1 = new QuantizedConv2d($"{prefix}.conv1", inPlanes, planes, kernelSize: 1);
        bn1 = nn.BatchNorm2d(planes);
        conv2 = new QuantizedConv2d($"{prefix}.conv2", planes, planes, kernelSize: 3, stride: stride, padding: 1);
        bn2 = nn.BatchNorm2d(planes);
        conv3 = new QuantizedConv2d($"{prefix}.conv3", planes, planes * Expansion, kernelSize: 1);
        bn3 = nn.BatchNorm2d(planes * Expansion);
        downsample = Projection.CreateIfNeeded($"{prefix}.downsample", inPlanes, planes * Expansion, stride);

        register_module("conv1", conv1);
        register_module("bn1", bn1);
        register_module("conv2", conv2);
        register_module("bn2", bn2);
        register_module("conv3", conv3);
        register_module("bn3", bn3);
        if (downsample is not null)
            register_module("downsample", downsample);
    }

    /// <summary>Zero scale on the last batch norm, so the residual branch starts at zero.</summary>
    public void ZeroInitLastNorm()
    {
        using var noGrad = torch.no_grad();
        bn3.weight!.zero_();
    }

    public override Tensor forward(Tensor input)
    {
        // Frees the block's intermediate handles as soon as it returns (autograd keeps what it needs).
        using var scope = NewDisposeScope();
        var identity = downsample is null ? input : downsample.call(input);
        var x = nn.functional.relu(bn1.call(conv1.call(input)));
        x = nn.functional.relu(bn2.call(conv2.call(x)));
        x = bn3.call(conv3.call(x));
        return nn.functional.relu(x.add(identity)).MoveToOuterDisposeScope();
    }
}
