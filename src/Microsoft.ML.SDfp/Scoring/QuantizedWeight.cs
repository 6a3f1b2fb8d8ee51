using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// A quantised weight tensor as stored in the model file: integers (int8 for formats of up to 8 bits, int16 above)
/// and one power-of-two exponent; the value of element i is Integers[i] · 2^Exponent.
/// </summary>
internal sealed class QuantizedWeight
{
    public QuantizedWeight(long[] shape, int bits, int exponent, sbyte[]? int8, short[]? int16)
    {
        Shape = shape;
        Bits = bits;
        Exponent = exponent;
        Int8 = int8;
        Int16 = int16;
    }

    public long[] Shape { get; }

    public int Bits { get; }

    public int Exponent { get; }

    public sbyte[]? Int8 { get; }

    public short[]? Int16 { get; }

    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Quantises <paramref name="weight"/> once in <paramref name="format"/> (nearest-even, current amax).</summary>
    public static QuantizedWeight From(Tensor weight, DfpFormat format, string layer)
    {
        using var scope = torch.NewDisposeScope();
        DfpTensor q;
        if (format.AutoShift)
        {
            // Auto shift is chosen per tensor by a quantiser; one fresh quantiser sees only this tensor.
            using var quantizer = new TensorQuantizer(layer, TensorRole.Weight, format);
            q = quantizer.Quantize(weight.detach());
        }
        else
        {
            q = Dfp.Quantize(weight.detach(), format);
        }

        using (q)
        {
            long[] shape = weight.shape;
            return format.Bits <= 8
                ? new QuantizedWeight(shape, format.Bits, q.Exponent, q.Integers.to_type(ScalarType.Int8).contiguous().data<sbyte>().ToArray(), null)
                : new QuantizedWeight(shape, format.Bits, q.Exponent, null, q.Integers.to_type(ScalarType.Int16).contiguous().data<short>().ToArray());
        }
    }

    /// <summary>The grid values as FP32, computed exactly (an integer of at most 16 bits times a power of two).</summary>
    public float[] ToFloats()
    {
        float scale = MathF.ScaleB(1f, Exponent);
        var values = new float[Count];
        if (Int8 is not null)
        {
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = Int8[i] * scale;
            }
        }
        else
        {
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = Int16![i] * scale;
            }
        }

        return values;
    }

    public Tensor ToTensor() => torch.tensor(ToFloats(), Shape);
}
