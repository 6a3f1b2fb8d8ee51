namespace Microsoft.ML.SDfp.Persistence;

/// <summary>The quantisation policy as the model file stores it: which layers are quantised, the seed and every role's format.</summary>
internal sealed record StoredPolicy(bool QuantizeFirstConv, bool QuantizeLastLinear, long Seed,
    StoredFormat? Weight, StoredFormat? Activation, StoredFormat? Error, StoredFormat? WeightGradient)
{
    public static StoredPolicy Read(BinaryReader reader) => new(reader.ReadBoolean(), reader.ReadBoolean(), reader.ReadInt64(),
        StoredFormat.Read(reader), StoredFormat.Read(reader), StoredFormat.Read(reader), StoredFormat.Read(reader));

    public void Write(BinaryWriter writer)
    {
        writer.Write(QuantizeFirstConv);
        writer.Write(QuantizeLastLinear);
        writer.Write(Seed);
        StoredFormat.Write(writer, Weight);
        StoredFormat.Write(writer, Activation);
        StoredFormat.Write(writer, Error);
        StoredFormat.Write(writer, WeightGradient);
    }
}
