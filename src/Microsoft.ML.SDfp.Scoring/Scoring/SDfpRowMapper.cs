using Microsoft.ML.Data;
using Microsoft.ML.SDfp.ImageInput;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// Row-at-a-time scoring for <c>PredictionEngine</c> and composed mappers: the scores of a row are computed on first
/// request and cached until the input row moves.
/// </summary>
internal sealed class SDfpRowMapper : IRowToRowMapper
{
    private readonly SDfpImageClassifier _transformer;

    public SDfpRowMapper(SDfpImageClassifier transformer, DataViewSchema inputSchema, DataViewSchema outputSchema)
    {
        _transformer = transformer;
        InputSchema = inputSchema;
        OutputSchema = outputSchema;
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = new HashSet<int>();
        foreach (DataViewSchema.Column column in dependingColumns)
        {
            if (column.Index < InputSchema.Count)
            {
                needed.Add(column.Index);
            }
            else
            {
                needed.Add(InputSchema[_transformer.FeatureColumnName].Index);
                if (ImageColumn.FindPath(InputSchema, _transformer.ImagePathColumnName) is { } path)
                {
                    needed.Add(path.Index);
                }
            }
        }

        return needed.OrderBy(i => i).Select(i => InputSchema[i]).ToList();
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        var active = new bool[OutputSchema.Count];
        foreach (DataViewSchema.Column column in activeColumns)
        {
            active[column.Index] = true;
        }

        return new Row(this, input, active);
    }

    private sealed class Row : DataViewRow
    {
        private readonly SDfpRowMapper _parent;
        private readonly DataViewRow _input;
        private readonly bool[] _active;
        private SDfpBatchScorer? _scorer;
        private long _scoredPosition = -1;

        public Row(SDfpRowMapper parent, DataViewRow input, bool[] active)
        {
            _parent = parent;
            _input = input;
            _active = active;
        }

        public override DataViewSchema Schema => _parent.OutputSchema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        private SDfpBatchScorer Scored()
        {
            // The scorer is created lazily: PredictionEngine may build the row before the feature getter can be made.
            _scorer ??= new SDfpBatchScorer(_parent._transformer, _input, wantProbabilities: _parent._transformer.ScoreColumnName is not null,
                wantEmbeddings: _parent._transformer.EmbeddingColumnName is not null);
            long position = _input.Position;
            if (_scorer.Count == 0 || _scoredPosition != position)
            {
                // A row mapper's position is not a row of the user's data (for PredictionEngine it counts calls).
                _scorer.ScoreBatch(1, null, () => -1);
                _scoredPosition = position;
            }

            return _scorer;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = _parent.InputSchema.Count;
            if (column.Index < inputCount)
            {
                return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            }

            // A row mapper scores one row at a time: the batch is that row.
            return SDfpOutputColumns.Getter<TValue>(_parent._transformer, column, column.Index - inputCount, Scored, () => 0);
        }
    }
}
