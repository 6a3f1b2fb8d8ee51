using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Onnx;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// Everything an S-DFP image classifier stores in its model .zip, read and written without TorchSharp: the stage's
/// settings and columns, the network's description, the label values, and the weights stream. The training package
/// writes it from its TorchSharp network and builds one back from it; this package builds the ONNX graph from it.
/// </summary>
internal sealed class ClassifierModelFile
{
    /// <summary>Names of the architectures by stored id (the training package's ResNetArchitecture order; a test holds them equal).</summary>
    internal static readonly string[] ArchitectureNames = ["ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet20", "ResNet32", "ResNet56"];

    private const string WeightsStreamName = "SDfpWeights";

    public required ImageColumnKind Kind { get; init; }

    public required ImageInputShape VectorShape { get; init; }

    public required string FeatureColumn { get; init; }

    public string? ImagePathColumn { get; init; }

    public string? ScoreColumn { get; init; }

    public string? PredictedLabelColumn { get; init; }

    public string? EmbeddingColumn { get; init; }

    public required int ScoringBatchSize { get; init; }

    public required int Architecture { get; init; }

    public required ImageInputShape InputShape { get; init; }

    public required bool SmallImageStem { get; init; }

    public required int ClassCount { get; init; }

    public required StoredPolicy Policy { get; init; }

    /// <summary>Static activation exponent of each quantised layer, by module path.</summary>
    public required IReadOnlyDictionary<string, int> ActivationExponents { get; init; }

    public required float[] Mean { get; init; }

    public required float[] Std { get; init; }

    public required LabelNames Labels { get; init; }

    public required IReadOnlyList<StoredTensor> Tensors { get; init; }

    public string ArchitectureName => Architecture >= 0 && Architecture < ArchitectureNames.Length ? ArchitectureNames[Architecture] : $"architecture {Architecture}";

    /// <summary>The network as the ONNX graph builder sees it.</summary>
    public ScoringNetwork ToScoringNetwork() => new(ArchitectureName, InputShape.Channels, InputShape.Height, InputShape.Width, ClassCount,
        Mean, Std, Tensors, ActivationExponents, Policy.Activation?.Bits ?? 0);

    // *** Binary format (Model.key) ***
    // int: image column kind; int×3: float-vector shape (c, h, w)
    // string ids: feature column, path column (or null), score, predicted label, embedding (each or null)
    // int: scoring batch size
    // int: architecture; int×3: input (c, h, w); bool: small-image stem; int: classes
    // policy (StoredPolicy); int n, n × (string id layer, int exponent): static activation exponents
    // int + float[]: mean; int + float[]: std
    // label values (BinarySaver type and value)
    // Stream "SDfpWeights": WeightsStream

    /// <summary>Writes the model at <paramref name="ctx"/>'s current position (after its version info).</summary>
    public void Write(IHostEnvironment env, ModelSaveContext ctx)
    {
        BinaryWriter w = ctx.Writer;
        w.Write((int)Kind);
        w.Write(VectorShape.Channels);
        w.Write(VectorShape.Height);
        w.Write(VectorShape.Width);
        ctx.SaveNonEmptyString(FeatureColumn);
        ctx.SaveStringOrNull(ImagePathColumn);
        ctx.SaveStringOrNull(ScoreColumn);
        ctx.SaveStringOrNull(PredictedLabelColumn);
        ctx.SaveStringOrNull(EmbeddingColumn);
        w.Write(ScoringBatchSize);
        w.Write(Architecture);
        w.Write(InputShape.Channels);
        w.Write(InputShape.Height);
        w.Write(InputShape.Width);
        w.Write(SmallImageStem);
        w.Write(ClassCount);
        Policy.Write(w);
        w.Write(ActivationExponents.Count);
        foreach (var (layer, exponent) in ActivationExponents.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            ctx.SaveNonEmptyString(layer);
            w.Write(exponent);
        }

        WriteFloats(w, Mean);
        WriteFloats(w, Std);
        w.Flush();
        Labels.Save(env, w.BaseStream);
        ctx.SaveBinaryStream(WeightsStreamName, weights => WeightsStream.Write(weights, Tensors));
    }

    /// <summary>
    /// Reads what <see cref="Write"/> wrote. Throws <see cref="InvalidDataException"/> naming what is wrong when the
    /// file is damaged or inconsistent.
    /// </summary>
    public static ClassifierModelFile Read(IHostEnvironment env, ModelLoadContext ctx)
    {
        try
        {
            return ReadCore(env, ctx);
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException or ArgumentException or FormatException)
        {
            throw new InvalidDataException($"The S-DFP image classifier in this model file is corrupt: {ex.Message}", ex);
        }
    }

    private static ClassifierModelFile ReadCore(IHostEnvironment env, ModelLoadContext ctx)
    {
        BinaryReader r = ctx.Reader;
        var kind = (ImageColumnKind)r.ReadInt32();
        var vectorShape = new ImageInputShape(r.ReadInt32(), r.ReadInt32(), r.ReadInt32());
        string featureColumn = ctx.LoadNonEmptyString();
        string? pathColumn = ctx.LoadStringOrNull();
        string? scoreColumn = ctx.LoadStringOrNull();
        string? predictedColumn = ctx.LoadStringOrNull();
        string? embeddingColumn = ctx.LoadStringOrNull();
        int batchSize = r.ReadInt32();
        int architecture = r.ReadInt32();
        var inputShape = new ImageInputShape(r.ReadInt32(), r.ReadInt32(), r.ReadInt32());
        bool smallStem = r.ReadBoolean();
        int classes = r.ReadInt32();
        StoredPolicy policy = StoredPolicy.Read(r);
        int exponentCount = r.ReadInt32();
        if (exponentCount is < 0 or > 10_000)
        {
            throw new InvalidDataException($"{exponentCount} activation exponents; the model file is corrupt.");
        }

        var exponents = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < exponentCount; i++)
        {
            exponents[ctx.LoadNonEmptyString()] = r.ReadInt32();
        }

        float[] mean = ReadFloats(r);
        float[] std = ReadFloats(r);
        LabelNames labels = LabelNames.Load(env, r.BaseStream);
        if (!Enum.IsDefined(kind) || architecture < 0 || architecture >= ArchitectureNames.Length || batchSize < 1 || classes < 2
            || labels.Count != classes || mean.Length != inputShape.Channels || std.Length != inputShape.Channels)
        {
            throw new InvalidDataException("The S-DFP image classifier's header is inconsistent; the model file is corrupt.");
        }

        IReadOnlyList<StoredTensor>? tensors = null;
        if (!ctx.TryLoadBinaryStream(WeightsStreamName, reader => tensors = WeightsStream.Read(reader)))
        {
            throw new InvalidDataException($"The S-DFP image classifier has no '{WeightsStreamName}' stream; the model file is corrupt or incomplete.");
        }

        return new ClassifierModelFile
        {
            Kind = kind,
            VectorShape = vectorShape,
            FeatureColumn = featureColumn,
            ImagePathColumn = pathColumn,
            ScoreColumn = scoreColumn,
            PredictedLabelColumn = predictedColumn,
            EmbeddingColumn = embeddingColumn,
            ScoringBatchSize = batchSize,
            Architecture = architecture,
            InputShape = inputShape,
            SmallImageStem = smallStem,
            ClassCount = classes,
            Policy = policy,
            ActivationExponents = exponents,
            Mean = mean,
            Std = std,
            Labels = labels,
            Tensors = tensors!,
        };
    }

    private static void WriteFloats(BinaryWriter writer, float[] values)
    {
        writer.Write(values.Length);
        foreach (float v in values)
        {
            writer.Write(v);
        }
    }

    private static float[] ReadFloats(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        if (count is < 0 or > 16)
        {
            throw new InvalidDataException($"Normalisation has {count} channels; the model file is corrupt.");
        }

        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = reader.ReadSingle();
        }

        return values;
    }
}
