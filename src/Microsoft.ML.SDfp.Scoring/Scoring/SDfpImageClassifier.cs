using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Onnx;
using Microsoft.ML.SDfp.Persistence;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// A trained S-DFP ResNet image classifier as a pipeline stage: adds a <c>Score</c> column of softmax probabilities
/// (with the annotations of multiclass scores), a <c>PredictedLabel</c> key column with the training label's key
/// values, and optionally an embedding column; a batch of rows per forward pass. The training package's
/// <c>SDfpImageClassificationTransformer</c> scores with TorchSharp; <see cref="SDfpOnnxImageClassifier"/> scores
/// the same model file with ONNX Runtime, without libtorch. Saved with <c>mlContext.Model.Save</c>, loaded with
/// <c>mlContext.Model.Load</c>.
/// </summary>
public abstract class SDfpImageClassifier : ITransformer, ICanSaveModel, IDisposable
{
    internal const string LoaderSignature = "SDfpImageClassifier";
    internal const string ModelSignature = "SDFPICLS";

    // 0x00010001: first format, loaded by the training package (its own loader signature); header not sealed.
    // 0x00010002: loaded by this package, so a scoring-only app can load it; the header is one SHA-256-sealed block
    //             that records the weights stream's hash (ClassifierModelFile, ClassifierHeader).
    // Bump VerWrittenCur on any layout change; raise VerReadableCur when older readers can no longer read it.
    internal const uint VerWrittenCur = 0x00010002;
    internal const uint VerReadableCur = 0x00010002;
    internal const uint VerWeCanReadBack = 0x00010002;

    private protected SDfpImageClassifier(IHostEnvironment env, string name, LabelNames labelNames, ImageColumnKind kind, ImageInputShape vectorShape,
        string featureColumnName, string? imagePathColumnName, string? scoreColumnName, string? predictedLabelColumnName, string? embeddingColumnName,
        int scoringBatchSize)
    {
        Host = env.Register(name);
        LabelNames = labelNames;
        Kind = kind;
        VectorShape = vectorShape;
        FeatureColumnName = featureColumnName;
        ImagePathColumnName = imagePathColumnName;
        ScoreColumnName = scoreColumnName;
        PredictedLabelColumnName = predictedLabelColumnName;
        EmbeddingColumnName = embeddingColumnName;
        ScoringBatchSize = scoringBatchSize;
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
    public int ClassCount => Engine.ClassCount;

    /// <summary>Length of the penultimate-layer embedding.</summary>
    public int EmbeddingSize => Engine.EmbeddingSize;

    /// <summary>Model input (channels, height, width); every image is resized to it.</summary>
    public (int Channels, int Height, int Width) InputShape => (Engine.Channels, Engine.Height, Engine.Width);

    /// <summary>The training label's class names, in key order.</summary>
    public IReadOnlyList<string> ClassNames => LabelNames.AsStrings();

    /// <summary>Always true: scoring is row-to-row, so <c>PredictionEngine</c> works.</summary>
    public bool IsRowToRowMapper => true;

    internal IHost Host { get; }

    internal LabelNames LabelNames { get; }

    internal ImageColumnKind Kind { get; }

    internal ImageInputShape VectorShape { get; }

    /// <summary>What scores the rows.</summary>
    internal abstract IImageScoringEngine Engine { get; }

    /// <summary>The stored integers and exponents of this model, as the ONNX graph is built from them.</summary>
    internal abstract ScoringNetwork ScoringNetwork { get; }

    /// <summary>Everything the model file holds, for <see cref="ICanSaveModel.Save"/>.</summary>
    internal abstract ClassifierModelFile ToModelFile();

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

    /// <summary>
    /// Writes this model as a standalone ONNX graph that reproduces its scoring arithmetic: input <c>pixels</c> float
    /// [N, 3, H, W], RGB planes in [0, 1] at <see cref="InputShape"/>'s size (grey models take luma inside the graph);
    /// outputs <c>probabilities</c> [N, classes], <c>predicted_label</c> [N] (uint32 key, 1-based) and
    /// <c>embedding</c> [N, features]. To export a whole ML.NET pipeline use <c>mlContext.Model.ConvertToOnnx</c>.
    /// </summary>
    /// <param name="stream">Where the ONNX ModelProto is written.</param>
    /// <exception cref="NotSupportedException">The model's number format has more than 8 bits, which ONNX integer operators cannot express.</exception>
    public void SaveAsOnnx(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        stream.Write(OnnxModelBuilder.Build(Host, ScoringNetwork, OnnxGraphKind.Exact));
    }

    internal void SaveAsOnnx(OnnxContext ctx, DataViewSchema inputSchema)
    {
        DataViewSchema output = BuildOutputSchema(new DataViewSchema.Builder().ToSchema());
        (string?, DataViewType?) Column(string? name) => name is null ? (null, null) : (name, output[name].Type);
        PipelineOnnxExport.Save(ctx, ScoringNetwork, FeatureColumnName, inputSchema[FeatureColumnName].Type,
            Column(ScoreColumnName), Column(PredictedLabelColumnName), Column(EmbeddingColumnName));
    }

    /// <summary>Releases the native memory this stage holds.</summary>
    public abstract void Dispose();

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        Host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ToModelFile().Write(Host, ctx);
    }

    internal static VersionInfo GetVersionInfo() => new(
        modelSignature: ModelSignature,
        verWrittenCur: VerWrittenCur,
        verReadableCur: VerReadableCur,
        verWeCanReadBack: VerWeCanReadBack,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(SDfpImageClassifier).Assembly.FullName);

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
            builder.AddColumn(ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single, ClassCount), LabelNames.ScoreAnnotations(setId));
        }

        if (PredictedLabelColumnName is not null)
        {
            builder.AddColumn(PredictedLabelColumnName, new KeyDataViewType(typeof(uint), ClassCount), LabelNames.PredictedLabelAnnotations(setId));
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
}
