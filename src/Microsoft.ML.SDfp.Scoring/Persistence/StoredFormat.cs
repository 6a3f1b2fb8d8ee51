namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// One role's number format as the model file stores it (the fields of the training package's DfpFormat), read and
/// written without TorchSharp.
/// </summary>
internal sealed record StoredFormat(int Bits, int Shift, int Rounding, int ExponentSource, int HistoryLength, bool AutoShift,
    int AutoShiftMin, int AutoShiftMax, double? MaxSaturatedFraction)
{
    /// <summary>Reads an optional format (a presence flag, then the fields).</summary>
    public static StoredFormat? Read(BinaryReader reader)
    {
        if (!reader.ReadBoolean())
        {
            return null;
        }

        var format = new StoredFormat(reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(),
            reader.ReadBoolean(), reader.ReadInt32(), reader.ReadInt32(), null);
        bool hasCap = reader.ReadBoolean();
        double cap = reader.ReadDouble();
        if (format.Bits is < 2 or > 16)
        {
            throw new InvalidDataException($"A stored number format has {format.Bits} bits; the model file is corrupt.");
        }

        return format with { MaxSaturatedFraction = hasCap ? cap : null };
    }

    /// <summary>Writes an optional format as <see cref="Read"/> reads it.</summary>
    public static void Write(BinaryWriter writer, StoredFormat? format)
    {
        writer.Write(format is not null);
        if (format is null)
        {
            return;
        }

        writer.Write(format.Bits);
        writer.Write(format.Shift);
        writer.Write(format.Rounding);
        writer.Write(format.ExponentSource);
        writer.Write(format.HistoryLength);
        writer.Write(format.AutoShift);
        writer.Write(format.AutoShiftMin);
        writer.Write(format.AutoShiftMax);
        writer.Write(format.MaxSaturatedFraction.HasValue);
        writer.Write(format.MaxSaturatedFraction ?? 0);
    }
}
