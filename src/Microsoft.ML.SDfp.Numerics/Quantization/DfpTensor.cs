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

    /// <summary>Wraps int8 integers given row-major as an array, such as a model file stores them.</summary>
    /// <param name="integers">The integers, in [format.QMin, format.QMax]; copied.</param>
    /// <param name="shape">The tensor's shape; its element count must equal the array's length.</param>
    /// <param name="exponent">Effective exponent e − s.</param>
    /// <param name="format">Format the integers were produced in; at most 8 bits.</param>
    /// <exception cref="ArgumentException">The shape does not hold the array's length, or the format is wider than int8.</exception>
    public static DfpTensor FromArray(sbyte[] integers, long[] shape, int exponent, DfpFormat format)
    {
        CheckArray(integers?.Length, shape, format, 8);
        return new DfpTensor(torch.tensor(integers!, shape), exponent, format);
    }

    /// <summary>Wraps int16 integers given row-major as an array, such as a model file stores them.</summary>
    /// <param name="integers">The integers, in [format.QMin, format.QMax]; copied.</param>
    /// <param name="shape">The tensor's shape; its element count must equal the array's length.</param>
    /// <param name="exponent">Effective exponent e − s.</param>
    /// <param name="format">Format the integers were produced in; at most 16 bits.</param>
    /// <exception cref="ArgumentException">The shape does not hold the array's length, or the format is wider than int16.</exception>
    public static DfpTensor FromArray(short[] integers, long[] shape, int exponent, DfpFormat format)
    {
        CheckArray(integers?.Length, shape, format, 16);
        return new DfpTensor(torch.tensor(integers!, shape), exponent, format);
    }

    /// <summary>The integers q, in [Format.QMin, Format.QMax].</summary>
    public Tensor Integers { get; }

    /// <summary>The effective exponent e − s shared by all integers.</summary>
    public int Exponent { get; }

    /// <summary>The format the tensor was quantised in.</summary>
    public DfpFormat Format { get; }

    /// <summary>The tensor's shape.</summary>
    public long[] Shape => Integers.shape;

    /// <summary>
    /// Copies the integers out row-major as <typeparamref name="T"/>: <see cref="sbyte"/>, <see cref="short"/>,
    /// <see cref="int"/> or <see cref="long"/>. Each integer must fit T (int8 holds every format of up to 8 bits).
    /// </summary>
    /// <exception cref="NotSupportedException">T is not one of the four integer types.</exception>
    public T[] ToArray<T>() where T : unmanaged
    {
        ScalarType type = typeof(T) == typeof(sbyte) ? ScalarType.Int8
            : typeof(T) == typeof(short) ? ScalarType.Int16
            : typeof(T) == typeof(int) ? ScalarType.Int32
            : typeof(T) == typeof(long) ? ScalarType.Int64
            : throw new NotSupportedException($"DfpTensor integers can be copied out as sbyte, short, int or long, not {typeof(T).Name}.");
        using var scope = torch.NewDisposeScope();
        return Integers.to_type(type).contiguous().data<T>().ToArray();
    }

    /// <summary>The FP32 values the integers stand for (exact: every q · 2^e of 16 bits or fewer is an FP32 number).</summary>
    public Tensor ToFloat()
    {
        var values = Integers.to_type(ScalarType.Float32);
        return values.mul_(Math.ScaleB(1.0, Exponent));
    }

    private static void CheckArray(int? length, long[] shape, DfpFormat format, int maxBits)
    {
        ArgumentNullException.ThrowIfNull(length, "integers");
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(format);
        if (format.Bits > maxBits)
            throw new ArgumentException($"A {format.Bits}-bit format does not fit int{maxBits} integers.", nameof(format));
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (shape.Any(d => d < 0) || count != length)
            throw new ArgumentException($"Shape [{string.Join(", ", shape)}] holds {count} elements, but the array has {length}.", nameof(shape));
    }

    /// <summary>Releases the integer tensor.</summary>
    public void Dispose() => Integers.Dispose();
}
