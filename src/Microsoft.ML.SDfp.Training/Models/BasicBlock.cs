using Microsoft.ML.SDfp.Numerics.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>
/// torchvision's BasicBlock: two 3×3 convs (the first carries the stride), each followed by batch
/// norm, and an identity or projection shortcut: <c>relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))</c>.
/// </summary>
internal sealed class BasicBlock : nn.Module<Tensor, Tensor>
{
    /// <summary>Output channels per <c>planes</c>.</summary>
    public const int Expansion = 1;

    private readonly QuantizedConv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly QuantizedConv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Sequential? downsample;

    /// <param name="prefix">State-dict prefix of this block, e.g. <c>layer2.0</c>.</param>
    /// <param name="inPlanes">Input channels.</param>
    /// <param name="planes">Output channels.</param>
    /// <param name="stride">Stride of the first conv (and of the projection).</param>
    public BasicBlock(string prefix, long inPlanes, long planes, long stride) : base(nameof(BasicBlock))
    {
        conv1 = new QuantizedConv2d($"{prefix}.conv1", inPlanes, planes, kernelSize: 3, stride: stride, padding: 1);
        bn1 = nn.BatchNorm2d(planes);
        conv2 = new QuantizedConv2d($"{prefix}.conv2", planes, planes, kernelSize: 3, stride: 1, padding: 1);
        bn2 = nn.BatchNorm2d(planes);
        downsample = Projection.CreateIfNeeded($"{prefix}.downsample", inPlanes, planes * Expansion, stride);

        register_module("conv1", conv1);
        register_module("bn1", bn1);
        register_module("conv2", conv2);
        register_module("bn2", bn2);
        if (downsample is not null)
            register_module("downsample", downsample);
    }

    /// <summary>Zero scale on the last batch norm, so the residual branch starts at zero.</summary>
    public void ZeroInitLastNorm()
    {
        using var noGrad = torch.no_grad();
        bn2.weight!.zero_();
    }

    public override Tensor forward(Tensor input)
    {
        if (!is_grad_enabled())
        {
            return Infer(input);
        }

        // Frees the block's intermediate handles as soon as it returns (autograd keeps what it needs).
        using var scope = NewDisposeScope();
        var identity = downsample is null ? input : downsample.call(input);
        var x = nn.functional.relu(bn1.call(conv1.call(input)));
        x = bn2.call(conv2.call(x));
        return nn.functional.relu(x.add(identity)).MoveToOuterDisposeScope();
    }

    // Without a graph each intermediate is freed as soon as the next one exists, the same arithmetic as forward.
    // Scoring one image calls this once per block: disposing as it goes keeps the enclosing dispose scope small,
    // where a scope of its own would grow its tracking set every call.
    private Tensor Infer(Tensor input)
    {
        using Tensor? projected = downsample?.call(input);
        using Tensor c1 = conv1.call(input);
        using Tensor b1 = bn1.call(c1);
        using Tensor r1 = nn.functional.relu(b1);
        using Tensor c2 = conv2.call(r1);
        using Tensor b2 = bn2.call(c2);
        using Tensor sum = b2.add(projected ?? input);
        return nn.functional.relu(sum);
    }
}
