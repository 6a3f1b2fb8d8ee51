namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// One state-dict tensor as the model file stores it, read without TorchSharp. Exactly one of the value arrays is
/// set, as <see cref="Kind"/> says. A quantised weight's element i is Int8[i] (or Int16[i]) · 2^Exponent.
/// </summary>
internal sealed class StoredTensor
{
    public StoredTensor(string name, StoredTensorKind kind, long[] shape, int bits = 0, int exponent = 0,
        float[]? float32 = null, sbyte[]? int8 = null, short[]? int16 = null, long[]? int64 = null)
    {
        Name = name;
        Kind = kind;
        Shape = shape;
        Bits = bits;
        Exponent = exponent;
        Float32 = float32;
        Int8 = int8;
        Int16 = int16;
        Int64 = int64;
    }

    public string Name { get; }

    public StoredTensorKind Kind { get; }

    public long[] Shape { get; }

    /// <summary>Bits of the quantised format (0 for float and int64 tensors).</summary>
    public int Bits { get; }

    /// <summary>Power-of-two exponent of a quantised weight.</summary>
    public int Exponent { get; }

    public float[]? Float32 { get; }

    public sbyte[]? Int8 { get; }

    public short[]? Int16 { get; }

    public long[]? Int64 { get; }

    public bool IsQuantized => Kind is StoredTensorKind.Int8 or StoredTensorKind.Int16;

    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>
    /// The values as FP32: quantised integers times 2^Exponent, which is exact (an integer of at most 16 bits times a
    /// power of two); float tensors as stored.
    /// </summary>
    public float[] ToFloats()
    {
        switch (Kind)
        {
            case StoredTensorKind.Float32:
                return Float32!;
            case StoredTensorKind.Int8:
            case StoredTensorKind.Int16:
                float scale = MathF.ScaleB(1f, Exponent);
                var values = new float[Count];
                for (int i = 0; i < values.Length; i++)
                {
                    values[i] = (Int8 is not null ? Int8[i] : Int16![i]) * scale;
                }

                return values;
            default:
                throw new InvalidOperationException($"State-dict tensor '{Name}' holds int64 values, not floats.");
        }
    }
}
