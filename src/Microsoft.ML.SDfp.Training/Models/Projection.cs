using Microsoft.ML.SDfp.Numerics.Layers;
using TorchSharp;
using TorchSharp.Modules;

namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>The projection shortcut <c>downsample = Sequential(conv1x1(stride), BatchNorm2d)</c>, as in torchvision.</summary>
internal static class Projection
{
    /// <summary>A projection when the shortcut changes shape (stride ≠ 1 or channel count changes), else null (identity).</summary>
    /// <param name="prefix">State-dict prefix, e.g. <c>layer2.0.downsample</c>; the conv is <c>{prefix}.0</c>.</param>
    /// <param name="inPlanes">Channels entering the block.</param>
    /// <param name="outPlanes">Channels leaving the block.</param>
    /// <param name="stride">Stride of the block.</param>
    public static Sequential? CreateIfNeeded(string prefix, long inPlanes, long outPlanes, long stride)
    {
        if (stride == 1 && inPlanes == outPlanes)
            return null;
        return torch.nn.Sequential(
            ("0", new QuantizedConv2d($"{prefix}.0", inPlanes, outPlanes, kernelSize: 1, stride: stride)),
            ("1", torch.nn.BatchNorm2d(outPlanes)));
    }
}
