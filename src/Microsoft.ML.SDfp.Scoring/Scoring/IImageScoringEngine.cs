namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// What scores a batch of images for the transformer: the TorchSharp network (training package) or an ONNX Runtime
/// session (this package). Implementations are safe to call from several threads.
/// </summary>
internal interface IImageScoringEngine : IDisposable
{
    /// <summary>Model input channels (1 or 3); images arrive as RGB and the engine converts.</summary>
    int Channels { get; }

    int Height { get; }

    int Width { get; }

    int ClassCount { get; }

    int EmbeddingSize { get; }

    /// <summary>
    /// Scores <paramref name="count"/> images given as RGB planes in [0, 1] (3×H×W each, contiguous). Returns softmax
    /// probabilities [count × classes] and/or embeddings [count × EmbeddingSize].
    /// </summary>
    (float[]? Probabilities, float[]? Embeddings) Score(float[] rgb, int count, bool wantProbabilities, bool wantEmbeddings);
}
