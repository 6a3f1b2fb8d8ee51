using System.Text;
using Microsoft.ML.SDfp.ImageInput;
using static Microsoft.ML.SDfp.Persistence.ModelIntegrity;

namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// Everything the classifier stores besides its weights: columns, architecture, input shape, number formats,
/// activation exponents, normalisation and the label values. Since format 0x00010002 it is one sealed block
/// (<see cref="ModelIntegrity.WriteSealed"/>) in the classifier's <c>Model.key</c>, and it records the SHA-256 of the
/// weights stream so that weights from another model are refused too. <see cref="Validate"/> range-checks every
/// decoded value against what the architecture allows, for files that are well-formed but were not written by us.
/// Read without TorchSharp, so the TorchSharp and the ONNX Runtime routes share these checks.
/// </summary>
internal sealed record ClassifierHeader
{
    public const uint Magic = 0x48464453; // "SDFH"

    /// <summary>The largest input side the trainer accepts (Options.ImageWidth/ImageHeight).</summary>
    public const int MaxImageSide = 1024;

    /// <summary>Power-of-two exponents a stored value may have (the training package's Dfp.MinExponent..MaxExponent; a test holds them equal).</summary>
    public const int MinExponent = -126;

    public const int MaxExponent = 127;

    public const int MaxClasses = 1 << 20;

    public const int MaxScoringBatchSize = 1 << 16;

    public required ImageColumnKind Kind { get; init; }

    public required ImageInputShape VectorShape { get; init; }

    public required string FeatureColumn { get; init; }

    public string? PathColumn { get; init; }

    public string? ScoreColumn { get; init; }

    public string? PredictedColumn { get; init; }

    public string? EmbeddingColumn { get; init; }

    public required int BatchSize { get; init; }

    public required int Architecture { get; init; }

    public required ImageInputShape InputShape { get; init; }

    public required bool SmallStem { get; init; }

    public required int Classes { get; init; }

    public required StoredPolicy Policy { get; init; }

    public required IReadOnlyDictionary<string, int> Exponents { get; init; }

    public required float[] Mean { get; init; }

    public required float[] Std { get; init; }

    /// <summary>The label values as ML.NET's BinarySaver writes a type and value.</summary>
    public required byte[] LabelBlock { get; init; }

    /// <summary>SHA-256 of the weights stream's payload; empty for files older than 0x00010002.</summary>
    public byte[] WeightsHash { get; init; } = [];

    public byte[] ToBytes()
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write((int)Kind);
            WriteShape(w, VectorShape);
            w.Write(FeatureColumn);
            foreach (string? name in new[] { PathColumn, ScoreColumn, PredictedColumn, EmbeddingColumn })
            {
                w.Write(name is not null);
                w.Write(name ?? string.Empty);
            }

            w.Write(BatchSize);
            w.Write(Architecture);
            WriteShape(w, InputShape);
            w.Write(SmallStem);
            w.Write(Classes);
            Policy.Write(w);
            w.Write(Exponents.Count);
            foreach (var (layer, exponent) in Exponents.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                w.Write(layer);
                w.Write(exponent);
            }

            WriteFloats(w, Mean);
            WriteFloats(w, Std);
            w.Write(LabelBlock.Length);
            w.Write(LabelBlock);
            w.Write(WeightsHash.Length);
            w.Write(WeightsHash);
        }

        return buffer.ToArray();
    }

    /// <summary>Parses a verified payload and range-checks it; any inconsistency is reported against <paramref name="entry"/>.</summary>
    public static ClassifierHeader FromBytes(byte[] payload, string entry)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(payload, writable: false), Encoding.UTF8);
            var kind = (ImageColumnKind)r.ReadInt32();
            ImageInputShape vectorShape = ReadShape(r);
            string feature = r.ReadString();
            string?[] names = new string?[4];
            for (int i = 0; i < names.Length; i++)
            {
                bool present = r.ReadBoolean();
                string name = r.ReadString();
                names[i] = present ? name : null;
            }

            int batchSize = r.ReadInt32();
            int architecture = r.ReadInt32();
            ImageInputShape inputShape = ReadShape(r);
            bool smallStem = r.ReadBoolean();
            int classes = r.ReadInt32();
            StoredPolicy policy = StoredPolicy.Read(r);
            int exponentCount = r.ReadInt32();
            Check(exponentCount is >= 0 and <= 10_000, entry, $"declares {exponentCount} activation exponents");
            var exponents = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < exponentCount; i++)
            {
                exponents[r.ReadString()] = r.ReadInt32();
            }

            float[] mean = ReadFloats(r, entry);
            float[] std = ReadFloats(r, entry);
            byte[] labels = ReadBytes(r, entry);
            byte[] weightsHash = ReadBytes(r, entry);
            Check(r.BaseStream.Position == payload.Length, entry, "has bytes after its last field");
            var header = new ClassifierHeader
            {
                Kind = kind, VectorShape = vectorShape, FeatureColumn = feature, PathColumn = names[0], ScoreColumn = names[1],
                PredictedColumn = names[2], EmbeddingColumn = names[3], BatchSize = batchSize, Architecture = architecture,
                InputShape = inputShape, SmallStem = smallStem, Classes = classes, Policy = policy, Exponents = exponents,
                Mean = mean, Std = std, LabelBlock = labels, WeightsHash = weightsHash,
            };
            header.Validate(entry);
            return header;
        }
        catch (Exception ex) when (IsMalformed(ex))
        {
            throw new ModelFileCorruptException(entry, $"has an invalid header: {ex.Message}", ex);
        }
    }

    /// <summary>Range-checks every value against what the trainer can produce.</summary>
    public void Validate(string entry)
    {
        Check(Enum.IsDefined(Kind), entry, $"has image column kind {(int)Kind}");
        Check(Kind == ImageColumnKind.FloatVector
                ? VectorShape.Channels is 1 or 3 && VectorShape.Height is >= 1 and <= 65_536 && VectorShape.Width is >= 1 and <= 65_536
                : VectorShape.Channels is >= 0 and <= 3 && VectorShape.Height is >= 0 and <= 65_536 && VectorShape.Width is >= 0 and <= 65_536,
            entry, $"has float-vector shape {VectorShape}");
        foreach (string? name in new[] { FeatureColumn, PathColumn, ScoreColumn, PredictedColumn, EmbeddingColumn })
        {
            Check(name is null || (name.Length is > 0 and <= 1024 && !name.Any(char.IsControl)), entry, $"has column name '{name}'");
        }

        Check(ScoreColumn is not null || EmbeddingColumn is not null, entry, "has neither a score nor an embedding column");
        Check(BatchSize is >= 1 and <= MaxScoringBatchSize, entry, $"has scoring batch size {BatchSize} (1..{MaxScoringBatchSize})");
        Check(Architecture >= 0 && Architecture < ClassifierModelFile.ArchitectureNames.Length, entry, $"has architecture {Architecture}");
        Check(InputShape.Channels is 1 or 3, entry, $"has {InputShape.Channels} input channels (1 or 3)");
        Check(InputShape.Height is >= 8 and <= MaxImageSide && InputShape.Width is >= 8 and <= MaxImageSide, entry,
            $"has input size {InputShape.Height}×{InputShape.Width} (8..{MaxImageSide})");
        Check(Classes is >= 2 and <= MaxClasses, entry, $"has {Classes} classes (2..{MaxClasses})");
        Check(Mean.Length == InputShape.Channels && Std.Length == InputShape.Channels, entry,
            $"has {Mean.Length}/{Std.Length} normalisation values for {InputShape.Channels} channels");
        Check(Mean.All(float.IsFinite) && Std.All(s => float.IsFinite(s) && s > 0), entry, "has a non-finite mean or a non-positive standard deviation");
        foreach (var (layer, exponent) in Exponents)
        {
            Check(layer.Length is > 0 and <= 256, entry, $"has activation exponent layer name '{layer}'");
            Check(exponent is >= MinExponent and <= MaxExponent, entry,
                $"has activation exponent {exponent} for '{layer}' ({MinExponent}..{MaxExponent})");
        }

        foreach (StoredFormat? format in new[] { Policy.Weight, Policy.Activation, Policy.Error, Policy.WeightGradient })
        {
            Check(format is null || (format.Bits is >= 2 and <= 16 && Math.Abs(format.Shift) <= 32), entry,
                $"has a number format of {format?.Bits} bits with shift {format?.Shift}");
        }

        Check(WeightsHash.Length is 0 or HashLength, entry, $"has a {WeightsHash.Length}-byte weights hash");
        Check(LabelBlock.Length > 0, entry, "has no label values");
    }

    private static void WriteShape(BinaryWriter w, ImageInputShape shape)
    {
        w.Write(shape.Channels);
        w.Write(shape.Height);
        w.Write(shape.Width);
    }

    private static ImageInputShape ReadShape(BinaryReader r) => new(r.ReadInt32(), r.ReadInt32(), r.ReadInt32());

    private static void WriteFloats(BinaryWriter w, float[] values)
    {
        w.Write(values.Length);
        foreach (float v in values)
        {
            w.Write(v);
        }
    }

    /// <summary>Normalisation values as both header formats store them: int count, then the floats.</summary>
    internal static float[] ReadFloats(BinaryReader r, string entry)
    {
        int count = r.ReadInt32();
        Check(count is >= 0 and <= 16, entry, $"has {count} normalisation channels");
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = r.ReadSingle();
        }

        return values;
    }

    private static byte[] ReadBytes(BinaryReader r, string entry)
    {
        int length = r.ReadInt32();
        Check(length >= 0 && length <= r.BaseStream.Length - r.BaseStream.Position, entry, $"declares a {length}-byte field past its end");
        return r.ReadBytes(length);
    }
}
