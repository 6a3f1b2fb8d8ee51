using Microsoft.ML.Data;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// The getters of the columns a transformer adds (score, predicted label, embedding), shared by the batch-scoring
/// view and the row-at-a-time mapper: both only differ in where the scored batch comes from and which of its rows is
/// the current one.
/// </summary>
internal static class SDfpOutputColumns
{
    /// <summary>
    /// The getter of output column <paramref name="column"/>, <paramref name="offset"/> places after the input's
    /// columns. <paramref name="scored"/> gives the scored batch of the current row, <paramref name="row"/> the row's
    /// index in that batch.
    /// </summary>
    public static ValueGetter<TValue> Getter<TValue>(SDfpImageClassifier transformer, DataViewSchema.Column column, int offset,
        Func<SDfpBatchScorer> scored, Func<int> row)
    {
        var (score, predicted, embedding) = transformer.OutputOffsets;
        int classes = transformer.ClassCount, embeddingSize = transformer.EmbeddingSize;
        Delegate getter;
        if (offset == score)
        {
            getter = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) => CopyRow(scored().Probabilities!, classes, row(), ref value));
        }
        else if (offset == predicted)
        {
            getter = (ValueGetter<uint>)((ref uint value) => value = ArgMaxKey(scored().Probabilities!, classes, row()));
        }
        else if (offset == embedding)
        {
            getter = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) => CopyRow(scored().Embeddings!, embeddingSize, row(), ref value));
        }
        else
        {
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' is not produced by this transformer.");
        }

        return getter as ValueGetter<TValue>
            ?? throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}; cannot get it as {typeof(TValue).Name}.");
    }

    /// <summary>1-based key of the most probable class (ties go to the lower class index).</summary>
    private static uint ArgMaxKey(float[] probabilities, int classes, int row)
    {
        ReadOnlySpan<float> p = probabilities.AsSpan(row * classes, classes);
        int best = 0;
        for (int c = 1; c < classes; c++)
        {
            if (p[c] > p[best])
            {
                best = c;
            }
        }

        return (uint)(best + 1);
    }

    private static void CopyRow(float[] source, int width, int row, ref VBuffer<float> value)
    {
        var editor = VBufferEditor.Create(ref value, width);
        source.AsSpan(row * width, width).CopyTo(editor.Values);
        value = editor.Commit();
    }
}
