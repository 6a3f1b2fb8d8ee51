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

    // The first model format, whose header was not sealed.
    private const uint FirstVersion = 0x00010001;

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

    /// <summary>The archive entry the header was read from (for errors about values the reader cannot check alone).</summary>
    public string HeaderEntry { get; init; } = ModelLoadContext.ModelStreamName;

    /// <summary>The archive entry the weights were read from.</summary>
    public string WeightsEntry { get; init; } = WeightsStreamName;

    public string ArchitectureName => Architecture >= 0 && Architecture < ArchitectureNames.Length ? ArchitectureNames[Architecture] : $"architecture {Architecture}";

    /// <summary>The network as the ONNX graph builder sees it.</summary>
    public ScoringNetwork ToScoringNetwork() => new(ArchitectureName, InputShape.Channels, InputShape.Height, InputShape.Width, ClassCount,
        Mean, Std, Tensors, ActivationExponents, Policy.Activation?.Bits ?? 0);

    // *** Binary format (Model.key) ***
    // Since 0x00010002: one sealed block (ModelIntegrity.WriteSealed) holding ClassifierHeader: columns, shapes,
    // architecture, policy (StoredPolicy), activation exponents, mean, std, the label values (BinarySaver type and
    // value) and the SHA-256 of the weights stream's payload.
    // 0x00010001 (read only): the same fields unsealed, column and layer names in ML.NET's string table:
    //   int: image column kind; int×3: float-vector shape (c, h, w)
    //   string ids: feature column, path column (or null), score, predicted label, embedding (each or null)
    //   int: scoring batch size
    //   int: architecture; int×3: input (c, h, w); bool: small-image stem; int: classes
    //   policy (StoredPolicy); int n, n × (string id layer, int exponent): static activation exponents
    //   int + float[]: mean; int + float[]: std
    //   label values (BinarySaver type and value)
    // Stream "SDfpWeights": WeightsStream

    /// <summary>Writes the model at <paramref name="ctx"/>'s current position (after its version info), in the current format.</summary>
    public void Write(IHostEnvironment env, ModelSaveContext ctx)
    {
        byte[] weights = WeightsStream.Payload(Tensors);
        using var labels = new MemoryStream();
        Labels.Save(env, labels);
        var header = new ClassifierHeader
        {
            Kind = Kind, VectorShape = VectorShape, FeatureColumn = FeatureColumn, PathColumn = ImagePathColumn, ScoreColumn = ScoreColumn,
            PredictedColumn = PredictedLabelColumn, EmbeddingColumn = EmbeddingColumn, BatchSize = ScoringBatchSize, Architecture = Architecture,
            InputShape = InputShape, SmallStem = SmallImageStem, Classes = ClassCount, Policy = Policy, Exponents = ActivationExponents,
            Mean = Mean, Std = Std, LabelBlock = labels.ToArray(), WeightsHash = System.Security.Cryptography.SHA256.HashData(weights),
        };
        ModelIntegrity.WriteSealed(ctx.Writer, ClassifierHeader.Magic, header.ToBytes());
        ctx.SaveBinaryStream(WeightsStreamName, writer => WeightsStream.Write(writer, weights));
    }

    /// <summary>
    /// Checks the version fields of the classifier at <paramref name="ctx"/> against <paramref name="version"/> (what
    /// the calling loader reads). Fields no writer produces are damage (<see cref="ModelFileCorruptException"/>); a
    /// version this loader cannot read is an <see cref="InvalidDataException"/> that says so.
    /// </summary>
    public static void CheckVersion(ModelLoadContext ctx, VersionInfo version)
    {
        string entry = EntryName(ctx, ModelLoadContext.ModelStreamName);
        uint written = ctx.Header.ModelVerWritten;
        uint readable = ctx.Header.ModelVerReadable;
        if (ctx.Header.ModelSignature != version.ModelSignature)
        {
            throw new ModelFileCorruptException(entry, $"has model signature {ctx.Header.ModelSignature:X16}, not the S-DFP classifier's.");
        }

        // ML.NET's own check says "incompatible version" for any version field it dislikes. A writer never declares a
        // readable version above the written one, and no version before the first was written, so such fields are damage.
        if (readable > written || written < FirstVersion)
        {
            throw new ModelFileCorruptException(entry, $"has version fields no version of Microsoft.ML.SDfp writes (written {written:X8}, readable {readable:X8}).");
        }

        try
        {
            ctx.CheckAtModel(version);
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or InvalidDataException)
        {
            throw new IncompatibleModelVersionException(
                $"This S-DFP image classifier was written by an incompatible version of Microsoft.ML.SDfp (model format {written:X8}, " +
                $"needs a reader of at least {readable:X8}), or its version fields in '{entry}' are damaged; this loader " +
                $"({version.LoaderSignature}, {typeof(ClassifierModelFile).Assembly.GetName().Version}) reads formats {version.VerWeCanReadBack:X8} to " +
                $"{version.VerWrittenCur:X8}. Load it with the Microsoft.ML.SDfp version that saved it, or retrain.", ex);
        }
    }

    /// <summary>
    /// Reads what <see cref="Write"/> wrote (or format 0x00010001). Throws <see cref="ModelFileCorruptException"/>
    /// naming the damaged entry when a checksum fails or a decoded value is outside what the architecture allows.
    /// </summary>
    public static ClassifierModelFile Read(IHostEnvironment env, ModelLoadContext ctx)
    {
        string entry = EntryName(ctx, ModelLoadContext.ModelStreamName);
        try
        {
            return ReadCore(env, ctx, entry);
        }
        catch (Exception ex) when (ModelIntegrity.IsMalformed(ex))
        {
            throw new ModelFileCorruptException(entry, $"cannot be read: {ex.Message}", ex);
        }
    }

    private static string EntryName(ModelLoadContext ctx, string name) =>
        string.IsNullOrEmpty(ctx.Directory) ? name : $"{ctx.Directory.Replace('\\', '/')}/{name}";

    private static ClassifierModelFile ReadCore(IHostEnvironment env, ModelLoadContext ctx, string entry)
    {
        ClassifierHeader header = ctx.Header.ModelVerWritten > FirstVersion
            ? ClassifierHeader.FromBytes(ModelIntegrity.ReadSealed(ctx.Reader, ClassifierHeader.Magic, entry), entry)
            : ReadFirstFormatHeader(env, ctx, entry);
        LabelNames labels;
        using (var block = new MemoryStream(header.LabelBlock, writable: false))
        {
            labels = LabelNames.Load(env, block, entry);
        }

        if (labels.Count != header.Classes)
        {
            throw new ModelFileCorruptException(entry, $"has {labels.Count} label values for {header.Classes} classes.");
        }

        string weightsEntry = EntryName(ctx, WeightsStreamName);
        IReadOnlyList<StoredTensor>? tensors = null;
        if (!ctx.TryLoadBinaryStream(WeightsStreamName, reader => tensors = WeightsStream.Read(reader, weightsEntry, header.WeightsHash)))
        {
            throw new ModelFileCorruptException(weightsEntry, "is missing.");
        }

        int? weightBits = header.Policy.Weight?.Bits;
        foreach (StoredTensor tensor in tensors!.Where(t => t.IsQuantized))
        {
            if (tensor.Bits != weightBits)
            {
                throw new ModelFileCorruptException(weightsEntry,
                    $"stores '{tensor.Name}' in {tensor.Bits} bits, but the header's weight format has {weightBits?.ToString() ?? "none"}.");
            }
        }

        return new ClassifierModelFile
        {
            Kind = header.Kind,
            VectorShape = header.VectorShape,
            FeatureColumn = header.FeatureColumn,
            ImagePathColumn = header.PathColumn,
            ScoreColumn = header.ScoreColumn,
            PredictedLabelColumn = header.PredictedColumn,
            EmbeddingColumn = header.EmbeddingColumn,
            ScoringBatchSize = header.BatchSize,
            Architecture = header.Architecture,
            InputShape = header.InputShape,
            SmallImageStem = header.SmallStem,
            ClassCount = header.Classes,
            Policy = header.Policy,
            ActivationExponents = header.Exponents,
            Mean = header.Mean,
            Std = header.Std,
            Labels = labels,
            Tensors = tensors!,
            HeaderEntry = entry,
            WeightsEntry = weightsEntry,
        };
    }

    // Format 0x00010001 wrote the header unsealed, with column names in ML.NET's string table. It is parsed as before
    // and range-checked, but it has no checksum: re-save such a model to get the integrity checks.
    private static ClassifierHeader ReadFirstFormatHeader(IHostEnvironment env, ModelLoadContext ctx, string entry)
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
            throw new ModelFileCorruptException(entry, $"declares {exponentCount} activation exponents.");
        }

        var exponents = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < exponentCount; i++)
        {
            exponents[ctx.LoadNonEmptyString()] = r.ReadInt32();
        }

        float[] mean = ClassifierHeader.ReadFloats(r, entry);
        float[] std = ClassifierHeader.ReadFloats(r, entry);
        using var labels = new MemoryStream();
        LabelNames.Load(env, r.BaseStream, entry).Save(env, labels);
        var header = new ClassifierHeader
        {
            Kind = kind, VectorShape = vectorShape, FeatureColumn = featureColumn, PathColumn = pathColumn, ScoreColumn = scoreColumn,
            PredictedColumn = predictedColumn, EmbeddingColumn = embeddingColumn, BatchSize = batchSize, Architecture = architecture,
            InputShape = inputShape, SmallStem = smallStem, Classes = classes, Policy = policy, Exponents = exponents,
            Mean = mean, Std = std, LabelBlock = labels.ToArray(),
        };
        header.Validate(entry);
        return header;
    }
}
