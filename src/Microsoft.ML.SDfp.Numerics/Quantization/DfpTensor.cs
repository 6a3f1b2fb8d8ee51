using Microsoft.ML.SDfp.Numerics.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>
/// A tensor in (shifted) dynamic fixed point: integers plus one shared exponent, value = Integers · 2^Exponent.
/// </summary>
/// <remarks>
/// The integers are stored in the narrowest signed type that holds them (int8 up to 8 bits, int16 up to 16 bits),
/// which is what integer hardware would consume. The instance owns <see cref="Integers"/>; dispose it.
/// </remarks>
public sealed class DfpTensor : IDisposable
{
    /// <summary>Wraps integers that already lie in the format's range.</summary>
    /// <param name="integers">Integer tensor (int8, int16, int32 or int64).</param>
    /// <param name="exponent">Effective exponent e − s: each integer stands for integer · 2^exponent.</param>
    /// <param name="format">Format the integers were produced in.</param>
    public DfpTensor(Tensor integers, int exponent, DfpFormat format)
    {
        ArgumentNullException.ThrowIfNull(integers);
        ArgumentNullException.ThrowIfNull(format);
        if (integers.dtype is not (ScalarType.Int8 or ScalarType.Int16 or ScalarType.Int32 or ScalarType.Int64))
            throw new ArgumentException($"DfpTensor integers must have an integer dtype, got {integers.dtype}.", nameof(integers));
        Integers = integers;
        Exponent = exponent;
        Format = format;
    }

    /// <summary>The integers q, in [Format.QMin, Format.QMax].</summary>
    public Tensor Integers { get; }

    /// <summary>The effective exponent e − s shared by all integers.</summary>
    public int Exponent { get; }

    /// <summary>The format the tensor was quantised in.</summary>
    public DfpFormat Format { get; }

    /// <summary>The FP32 values the integers stand for (exact: every q · 2^e of 16 bits or fewer is an FP32 number).</summary>
    public Tensor ToFloat()
    {
        var values = Integers.to_type(ScalarType.Float32);
        return values.mul_(Math.ScaleB(1.0, Exponent));
    }

    /// <summary>Releases the integer tensor.</summary>
    public void Dispose() => Integers.Dispose();
}
