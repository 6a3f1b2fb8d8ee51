using Microsoft.ML.SDfp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Tests;

/// <summary>Base of every test class: makes TorchSharp loadable and gives small helpers.</summary>
public abstract class TorchTests
{
    protected TorchTests() => TorchSharpRuntime.EnsureLoaded();

    protected static float[] Values(Tensor t) => t.contiguous().to_type(ScalarType.Float32).data<float>().ToArray();

    protected static long[] Longs(Tensor t) => t.contiguous().to_type(ScalarType.Int64).data<long>().ToArray();

    /// <summary>A tensor whose values span several orders of magnitude, like real activations and errors.</summary>
    protected static Tensor Random(long seed, params long[] shape)
    {
        using var generator = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        var magnitude = torch.exp(torch.randn(shape, generator: generator) * 1.5);
        var sign = torch.randn(shape, generator: generator).sign();
        return (magnitude * sign).MoveToOuterDisposeScope();
    }

    /// <summary>Every element exactly equal (±0 count as equal: integers have no negative zero).</summary>
    protected static void AssertExactlyEqual(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        var e = Values(expected);
        var a = Values(actual);
        for (var i = 0; i < e.Length; i++)
        {
            if (e[i] != a[i])
                Assert.Fail($"Element {i}: expected {e[i]:R}, got {a[i]:R}.");
        }
    }
}
