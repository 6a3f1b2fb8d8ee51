using Microsoft.ML.SDfp.ImageInput;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// Reads images from one row source, normalises them and scores up to a batch in one forward pass. Owns its buffers,
/// so one instance per cursor or mapper row; the network itself is shared.
/// </summary>
internal sealed class SDfpBatchScorer
{
    private readonly IImageScoringEngine _engine;
    private readonly ImageFeatureReader _reader;
    private readonly bool _wantProbabilities;
    private readonly bool _wantEmbeddings;
    private readonly float[] _rgb; // one image's size; the batch is read straight into _images
    private float[] _images;

    public SDfpBatchScorer(SDfpImageClassifier transformer, DataViewRow row, bool wantProbabilities, bool wantEmbeddings)
    {
        _engine = transformer.Engine;
        _reader = new ImageFeatureReader(row, transformer.FeatureColumnName, transformer.Kind, transformer.VectorShape,
            _engine.Width, _engine.Height, ImageColumn.FindPath(row.Schema, transformer.ImagePathColumnName));
        _wantProbabilities = wantProbabilities;
        _wantEmbeddings = wantEmbeddings;
        _rgb = new float[_reader.RgbSize];
        _images = Array.Empty<float>();
    }

    /// <summary>Probabilities [rows × classes] of the last scored batch (null when not requested).</summary>
    public float[]? Probabilities { get; private set; }

    /// <summary>Embeddings [rows × size] of the last scored batch (null when not requested).</summary>
    public float[]? Embeddings { get; private set; }

    /// <summary>Rows in the last scored batch.</summary>
    public int Count { get; private set; }

    /// <summary>
    /// Reads the current row (first) and then, while <paramref name="moveNext"/> succeeds, up to
    /// <paramref name="maxRows"/> rows in total, and scores them in one pass.
    /// </summary>
    public void ScoreBatch(int maxRows, Func<bool>? moveNext, Func<long> rowIndex)
    {
        int size = _rgb.Length;
        if (_images.Length != maxRows * size)
        {
            _images = new float[maxRows * size];
        }

        int count = 0;
        do
        {
            _reader.Read(_images.AsSpan(count * size, size), rowIndex());
            count++;
        }
        while (count < maxRows && moveNext is not null && moveNext());

        (Probabilities, Embeddings) = _engine.Score(_images, count, _wantProbabilities, _wantEmbeddings);
        Count = count;
        ScoringHeapBound.AfterBatch();
    }
}
