using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.SDfp.ImageInput;

namespace Microsoft.ML.SDfp.Scoring;

/// <summary>
/// The IDataView that <see cref="SDfpImageClassifier.Transform"/> returns: the input's columns plus the
/// scores. Each cursor runs a second, lead cursor over the same input that reads ahead a batch of images and scores
/// them in one forward pass; the main cursor serves the passthrough columns and picks the scores of its row.
/// It is a data transform only so that <c>mlContext.Model.ConvertToOnnx</c>, which walks a pipeline's data
/// transforms, finds the stage and exports it.
/// </summary>
internal sealed class SDfpScoredDataView : ITransformCanSaveOnnx
{
    private readonly SDfpImageClassifier _transformer;
    private readonly IDataView _input;

    public SDfpScoredDataView(SDfpImageClassifier transformer, IDataView input, DataViewSchema schema)
    {
        _transformer = transformer;
        _input = input;
        Schema = schema;
    }

    /// <summary>The input view (what ONNX export walks back to).</summary>
    public IDataView Source => _input;

    public bool CanSaveOnnx(OnnxContext ctx) => true;

    public void SaveAsOnnx(OnnxContext ctx) => _transformer.SaveAsOnnx(ctx, _input.Schema);

    // A scored view is not saved on its own: ML.NET saves the transformer (mlContext.Model.Save), which rebuilds it.
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException("Save the S-DFP transformer with mlContext.Model.Save; its scored IDataView is not saved on its own.");

    // The lead and main cursors must visit the same rows in the same order, so shuffling is not offered.
    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int inputCount = _input.Schema.Count;
        var active = new bool[Schema.Count];
        foreach (DataViewSchema.Column column in columnsNeeded)
        {
            active[column.Index] = true;
        }

        var (score, predicted, embedding) = _transformer.OutputOffsets;
        bool wantScores = (score >= 0 && active[inputCount + score]) || (predicted >= 0 && active[inputCount + predicted]);
        bool wantEmbeddings = embedding >= 0 && active[inputCount + embedding];
        var inputColumns = _input.Schema.Where(c => active[c.Index]).ToList();
        DataViewRowCursor main = _input.GetRowCursor(inputColumns);
        DataViewRowCursor? lead = null;
        if (wantScores || wantEmbeddings)
        {
            var leadColumns = new List<DataViewSchema.Column> { _input.Schema[_transformer.FeatureColumnName] };
            if (ImageColumn.FindPath(_input.Schema, _transformer.ImagePathColumnName) is { } path)
            {
                leadColumns.Add(path);
            }

            lead = _input.GetRowCursor(leadColumns);
        }

        return new Cursor(this, main, lead, active, wantScores, wantEmbeddings);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly SDfpScoredDataView _parent;
        private readonly DataViewRowCursor _input;
        private readonly DataViewRowCursor? _lead;
        private readonly bool[] _active;
        private readonly SDfpBatchScorer? _scorer;
        private readonly int _inputCount;
        private long _position = -1;
        private long _batchStart;
        private long _leadRows;
        private bool _leadDone;

        public Cursor(SDfpScoredDataView parent, DataViewRowCursor input, DataViewRowCursor? lead, bool[] active, bool wantScores, bool wantEmbeddings)
        {
            _parent = parent;
            _input = input;
            _lead = lead;
            _active = active;
            _inputCount = parent._input.Schema.Count;
            if (lead is not null)
            {
                _scorer = new SDfpBatchScorer(parent._transformer, lead, wantScores, wantEmbeddings);
            }
        }

        public override DataViewSchema Schema => _parent.Schema;

        public override long Position => _position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override bool MoveNext()
        {
            if (!_input.MoveNext())
            {
                return false;
            }

            _position++;
            if (_scorer is not null && _position >= _batchStart + _scorer.Count)
            {
                FillBatch();
            }

            return true;
        }

        private void FillBatch()
        {
            if (_leadDone || !_lead!.MoveNext())
            {
                throw new InvalidOperationException("The input data view returned fewer rows to the scoring read-ahead cursor than to the main cursor; it must be deterministic.");
            }

            _batchStart = _leadRows;
            int max = _parent._transformer.ScoringBatchSize;
            _scorer!.ScoreBatch(max, () =>
            {
                if (_lead.MoveNext())
                {
                    return true;
                }

                _leadDone = true;
                return false;
            }, () => _lead.Position);
            _leadRows += _scorer.Count;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!_active[column.Index])
            {
                throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            }

            if (column.Index < _inputCount)
            {
                return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            }

            return SDfpOutputColumns.Getter<TValue>(_parent._transformer, column, column.Index - _inputCount, () => _scorer!, RowInBatch);
        }

        private int RowInBatch() => (int)(_position - _batchStart);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _input.Dispose();
                _lead?.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
