using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.Onnx;
using Microsoft.ML.SDfp.Persistence;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// An S-DFP image classifier scored by ONNX Runtime on a graph built, when the model is loaded, from the integers and
/// exponents stored in its file: no TorchSharp, no libtorch. Same columns as the training package's transformer;
/// the same predicted labels, and scores equal within float summation order (see the package README).
/// </summary>
public sealed class SDfpOnnxImageClassifier : SDfpImageClassifier
{
    private readonly ClassifierModelFile _file;
    private readonly OnnxRuntimeEngine _engine;

    internal SDfpOnnxImageClassifier(IHostEnvironment env, ClassifierModelFile file, OnnxGraphKind kind = OnnxGraphKind.Exact)
        : base(env, nameof(SDfpOnnxImageClassifier), file.Labels, file.Kind, file.VectorShape, file.FeatureColumn, file.ImagePathColumn,
            file.ScoreColumn, file.PredictedLabelColumn, file.EmbeddingColumn, file.ScoringBatchSize)
    {
        _file = file;
        _engine = new OnnxRuntimeEngine(env, file.ToScoringNetwork(), kind);
    }

    /// <summary>Network architecture, e.g. "ResNet20".</summary>
    public string ArchitectureName => _file.ArchitectureName;

    internal override IImageScoringEngine Engine => _engine;

    internal override ScoringNetwork ScoringNetwork => _engine.Network;

    // Saved as loaded: the file's own integers, so a re-saved model is the same model.
    internal override ClassifierModelFile ToModelFile() => _file;

    /// <summary>Releases the ONNX Runtime session.</summary>
    public override void Dispose() => _engine.Dispose();
}
