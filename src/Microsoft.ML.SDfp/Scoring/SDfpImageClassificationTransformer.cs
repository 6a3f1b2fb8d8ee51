using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Persistence;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Scoring;
using Microsoft.ML.SDfp.Training.Models;
using Microsoft.ML.SDfp.Trainers;

[assembly: LoadableClass(typeof(SDfpImageClassificationTransformer), null, typeof(SignatureLoadModel),
    "S-DFP Image Classification Transformer", SDfpImageClassificationTransformer.LoaderSignature)]

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// A ResNet image classifier trained by <see cref="SDfpImageClassificationTrainer"/>. Adds a <c>Score</c> column of
/// softmax probabilities (with the annotations of multiclass scores), a <c>PredictedLabel</c> key column with the
/// training label's key values, and optionally an embedding column. Scores in the trained number format (S-DFP weights
/// and activations), a batch of rows per forward pass. Saved with <c>mlContext.Model.Save</c>; loaded by
/// <c>mlContext.Model.Load</c> in any process, with no registration call.
/// </summary>
public sealed class SDfpImageClassificationTransformer : ITransformer, ICanSaveModel, IDisposable
{
    internal const string LoaderSignature = "SDfpImageClassifierXf";
    internal const string ModelSignature = "SDFPICLS";

    // Version 0x00010001: first format (policy, normalisation, label values, int8/int16 + exponent weights, SHA-256).
    // Bump VerWrittenCur on any layout change; raise VerReadableCur when older readers can no longer read it.
    internal const uint VerWrittenCur = 0x00010001;
    internal const uint VerReadableCur = 0x00010001;
    internal const uint VerWeCanReadBack = 0x00010001;

    private const string WeightsStreamName = "SDfpWeights";

    private readonly IHost _host;
    private readonly SDfpNetwork _network;
    private readonly LabelNames _labelNames;
    private readonly bool _ownsNetwork;

    internal SDfpImageClassificationTransformer(IHostEnvironment env, SDfpNetwork network, LabelNames labelNames, ImageColumnKind kind,
        ImageInputShape vectorShape, string featureColumnName, string? imagePathColumnName, string? scoreColumnName,
        string? predictedLabelColumnName, string? embeddingColumnName, int scoringBatchSize, bool ownsNetwork = true)
    {
        _host = env.Register(nameof(SDfpImageClassificationTransformer));
        _network = network;
        _labelNames = labelNames;
        Kind = kind;
        VectorShape = vectorShape;
        FeatureColumnName = featureColumnName;
        ImagePathColumnName = imagePathColumnName;
        ScoreColumnName = scoreColumnName;
        PredictedLabelColumnName = predictedLabelColumnName;
        EmbeddingColumnName = embeddingColumnName;
        ScoringBatchSize = scoringBatchSize;
        _ownsNetwork = ownsNetwork;
    }

    /// <summary>Name of the input image column.</summary>
    public string FeatureColumnName { get; }

    /// <summary>Name of the probabilities column, or null for a featurizer.</summary>
    public string? ScoreColumnName { get; }

    /// <summary>Name of the predicted-label key column, or null for a featurizer.</summary>
    public string? PredictedLabelColumnName { get; }

    /// <summary>Name of the embedding column, or null when the embedding is not emitted.</summary>
    public string? EmbeddingColumnName { get; }

    /// <summary>Text column quoted in image-decoding errors, when the input has it.</summary>
    public string? ImagePathColumnName { get; }

    /// <summary>Rows scored per forward pass when transforming an IDataView.</summary>
    public int ScoringBatchSize { get; }

    /// <summary>Number of classes (size of the Score vector).</summary>
    public int ClassCount => _network.ClassCount;

    /// <summary>Length of the penultimate-layer embedding.</summary>
    public int EmbeddingSize => _network.EmbeddingSize;

    /// <summary>Network architecture.</summary>
    public ResNetArchitecture Architecture => _network.Model.Options.Architecture;

    /// <summary>Model input (channels, height, width); every image is resized to it.</summary>
    public (int Channels, int Height, int Width) InputShape => (_network.InputShape.Channels, _network.InputShape.Height, _network.InputShape.Width);

    /// <summary>The number format the body was trained in and scores in, e.g. "W S-DFP8(s=0), A S-DFP8(s=1), G S-DFP8(s=2)" or "FP32".</summary>
    public string NumberFormat
    {
        get
        {
            var layers = _network.TrainedPolicy.Layers;
            return layers.IsFp32 ? "FP32" : $"W {DfpFormat.NameOf(layers.Weight)}, A {DfpFormat.NameOf(layers.Activation)}, G {DfpFormat.NameOf(layers.Error)}";
        }
    }

    /// <summary>The training label's class names, in key order.</summary>
    public IReadOnlyList<string> ClassNames => _labelNames.AsStrings();

    /// <summary>Always true: scoring is row-to-row, so <c>PredictionEngine</c> works.</summary>
    public bool IsRowToRowMapper => true;

    internal ImageColumnKind Kind { get; }

    internal ImageInputShape VectorShape { get; }

    internal SDfpNetwork Network => _network;

    internal LabelNames LabelNames => _labelNames;

    internal IHost Host => _host;

    /// <summary>Test hook: store quantised weights as FP32 to measure what integer storage saves.</summary>
    internal bool StoreWeightsAsFp32 { get; set; }

    /// <summary>
    /// A transformer that shares this model and emits only its penultimate-layer embedding (a float vector of
    /// <see cref="EmbeddingSize"/>) in <paramref name="outputColumnName"/>, as features for another trainer.
    /// </summary>
    public SDfpImageClassificationTransformer AsFeaturizer(string outputColumnName = "Embedding")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputColumnName);
        return new SDfpImageClassificationTransformer(_host, _network, _labelNames, Kind, VectorShape, FeatureColumnName, ImagePathColumnName,
            scoreColumnName: null, predictedLabelColumnName: null, embeddingColumnName: outputColumnName, ScoringBatchSize, ownsNetwork: false);
    }

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInput(inputSchema);
        return BuildOutputSchema(inputSchema);
    }

    /// <inheritdoc/>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckInput(input.Schema);
        return new SDfpScoredDataView(this, input, BuildOutputSchema(input.Schema));
    }

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInput(inputSchema);
        return new SDfpRowMapper(this, inputSchema, BuildOutputSchema(inputSchema));
    }

    /// <summary>Releases the native memory of the network (when this transformer owns it).</summary>
    public void Dispose()
    {
        if (_ownsNetwork)
        {
            _network.Dispose();
        }
    }

    private void CheckInput(DataViewSchema inputSchema)
    {
        ImageColumnKind kind = ImageColumn.ResolveKind(inputSchema, FeatureColumnName,
            Kind == ImageColumnKind.FloatVector ? (VectorShape.Channels, VectorShape.Height, VectorShape.Width) : null, out ImageInputShape shape);
        if (kind != Kind || (kind == ImageColumnKind.FloatVector && shape != VectorShape))
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Image column '{FeatureColumnName}' has type {inputSchema[FeatureColumnName].Type}, but the model was trained on {Describe(Kind, VectorShape)}.");
        }
    }

    private static string Describe(ImageColumnKind kind, ImageInputShape shape) => kind switch
    {
        ImageColumnKind.EncodedBytes => "encoded image bytes",
        ImageColumnKind.MLImage => "images (MLImage)",
        _ => $"float vectors of shape {shape}",
    };

    private DataViewSchema BuildOutputSchema(DataViewSchema inputSchema)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        uint setId = inputSchema.GetMaxAnnotationKind(out _, AnnotationUtils.Kinds.ScoreColumnSetId) + 1;
        if (ScoreColumnName is not null)
        {
            builder.AddColumn(ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single, ClassCount), _labelNames.ScoreAnnotations(setId));
        }

        if (PredictedLabelColumnName is not null)
        {
            builder.AddColumn(PredictedLabelColumnName, new KeyDataViewType(typeof(uint), ClassCount), _labelNames.PredictedLabelAnnotations(setId));
        }

        if (EmbeddingColumnName is not null)
        {
            builder.AddColumn(EmbeddingColumnName, new VectorDataViewType(NumberDataViewType.Single, EmbeddingSize));
        }

        return builder.ToSchema();
    }

    /// <summary>Which output columns (by position after the input columns) this transformer adds.</summary>
    internal (int Score, int PredictedLabel, int Embedding) OutputOffsets
    {
        get
        {
            int next = 0;
            int score = ScoreColumnName is not null ? next++ : -1;
            int predicted = PredictedLabelColumnName is not null ? next++ : -1;
            int embedding = EmbeddingColumnName is not null ? next++ : -1;
            return (score, predicted, embedding);
        }
    }

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: ModelSignature,
        verWrittenCur: VerWrittenCur,
        verReadableCur: VerReadableCur,
        verWeCanReadBack: VerWeCanReadBack,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(SDfpImageClassificationTransformer).Assembly.FullName);

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        _host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());

        // *** Binary format (Model.key) ***
        // int: image column kind; int×3: float-vector shape (c, h, w)
        // string ids: feature column, path column (or null), score, predicted label, embedding (each or null)
        // int: scoring batch size
        // int: architecture; int×3: input (c, h, w); bool: small-image stem; int: classes
        // policy (SDfpModelFormat.WritePolicy); int n, n × (string id layer, int exponent): static activation exponents
        // int + float[]: mean; int + float[]: std
        // label values (BinarySaver type and value)
        // Stream "SDfpWeights": SDfpModelFormat.WriteWeights
        BinaryWriter w = ctx.Writer;
        w.Write((int)Kind);
        w.Write(VectorShape.Channels);
        w.Write(VectorShape.Height);
        w.Write(VectorShape.Width);
        ctx.SaveNonEmptyString(FeatureColumnName);
        ctx.SaveStringOrNull(ImagePathColumnName);
        ctx.SaveStringOrNull(ScoreColumnName);
        ctx.SaveStringOrNull(PredictedLabelColumnName);
        ctx.SaveStringOrNull(EmbeddingColumnName);
        w.Write(ScoringBatchSize);
        ResNetOptions options = _network.Model.Options;
        w.Write((int)options.Architecture);
        w.Write(_network.InputShape.Channels);
        w.Write(_network.InputShape.Height);
        w.Write(_network.InputShape.Width);
        w.Write(options.SmallImageStem);
        w.Write(options.NumClasses);
        SDfpModelFormat.WritePolicy(w, _network.TrainedPolicy);
        w.Write(_network.ActivationExponents.Count);
        foreach (var (layer, exponent) in _network.ActivationExponents.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            ctx.SaveNonEmptyString(layer);
            w.Write(exponent);
        }

        WriteFloats(w, _network.Mean);
        WriteFloats(w, _network.Std);
        w.Flush();
        _labelNames.Save(_host, w.BaseStream);
        ctx.SaveBinaryStream(WeightsStreamName, weights => SDfpModelFormat.WriteWeights(weights, _network, StoreWeightsAsFp32));
    }

    // Called by ML.NET's model loader through the LoadableClass attribute (SignatureLoadModel).
    private static SDfpImageClassificationTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        IHost host = env.Register(nameof(SDfpImageClassificationTransformer));
        host.CheckValue(ctx, nameof(ctx));
        try
        {
            ctx.CheckAtModel(GetVersionInfo());
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException(
                $"This S-DFP image classifier was written by an incompatible version of Microsoft.ML.SDfp (model format {ctx.Header.ModelVerWritten:X8}, " +
                $"needs a reader of at least {ctx.Header.ModelVerReadable:X8}); this version ({typeof(SDfpImageClassificationTransformer).Assembly.GetName().Version}) " +
                $"reads formats {VerWeCanReadBack:X8} to {VerWrittenCur:X8}. Load it with the Microsoft.ML.SDfp version that saved it, or retrain.", ex);
        }

        TorchSharpRuntime.EnsureLoaded();
        try
        {
            return Read(host, ctx);
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException or ArgumentException or FormatException)
        {
            throw new InvalidDataException($"The S-DFP image classifier in this model file is corrupt: {ex.Message}", ex);
        }
    }

    private static SDfpImageClassificationTransformer Read(IHost host, ModelLoadContext ctx)
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
        var architecture = (ResNetArchitecture)r.ReadInt32();
        var inputShape = new ImageInputShape(r.ReadInt32(), r.ReadInt32(), r.ReadInt32());
        bool smallStem = r.ReadBoolean();
        int classes = r.ReadInt32();
        QuantizationPolicy policy = SDfpModelFormat.ReadPolicy(r);
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
        LabelNames labelNames = LabelNames.Load(host, r.BaseStream);
        if (!Enum.IsDefined(kind) || !Enum.IsDefined(architecture) || batchSize < 1 || classes < 2 || labelNames.Count != classes
            || mean.Length != inputShape.Channels || std.Length != inputShape.Channels)
        {
            throw new InvalidDataException("The S-DFP image classifier's header is inconsistent; the model file is corrupt.");
        }

        Dictionary<string, TorchSharp.torch.Tensor>? stateDict = null;
        Dictionary<string, DfpTensor>? quantized = null;
        if (!ctx.TryLoadBinaryStream(WeightsStreamName, reader => (stateDict, quantized) = SDfpModelFormat.ReadWeights(reader)))
        {
            throw new InvalidDataException($"The S-DFP image classifier has no '{WeightsStreamName}' stream; the model file is corrupt or incomplete.");
        }

        ResNetModel model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = architecture,
            NumClasses = classes,
            InputChannels = inputShape.Channels,
            SmallImageStem = smallStem,
            Quantization = policy,
        });
        try
        {
            var (missing, unexpected) = model.load_state_dict(stateDict!, strict: false);
            if (missing.Count > 0 || unexpected.Count > 0)
            {
                throw new InvalidDataException(
                    $"The S-DFP weights do not match a {architecture} with {classes} classes (missing: {string.Join(", ", missing.Take(5))}; unexpected: {string.Join(", ", unexpected.Take(5))}); the model file is corrupt.");
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            foreach (var tensor in stateDict!.Values)
            {
                tensor.Dispose();
            }
        }

        var network = new SDfpNetwork(model, inputShape, mean, std);
        network.Freeze(quantized, exponents);
        return new SDfpImageClassificationTransformer(host, network, labelNames, kind, vectorShape, featureColumn, pathColumn,
            scoreColumn, predictedColumn, embeddingColumn, batchSize);
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
