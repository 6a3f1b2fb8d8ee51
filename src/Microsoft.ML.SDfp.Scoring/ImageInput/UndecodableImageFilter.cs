using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.SDfp.ImageInput;

/// <summary>
/// The rows of a data view whose image decodes, for scoring a data set that has bad rows: every row's image is decoded
/// (as the classifier would) and a row whose image is empty, not an image, or truncated is left out. The image is the
/// image column when the data has it, else the file the path column names (the Model Builder pipeline loads the bytes
/// inside the model, so its input has only paths). Each cursor logs,
/// when it is disposed, how many rows it skipped and the first files. The images are decoded again by the classifier,
/// so this costs one extra decode per row.
/// </summary>
internal sealed class UndecodableImageFilter : IDataView
{
    // Decoding validates the file; the pixels are not used, so they are resized to the smallest size the reader allows.
    private const int ProbeSize = 8;

    private readonly IHost _host;
    private readonly IDataView _source;
    private readonly string _imageColumn;
    private readonly string? _pathColumn;
    private readonly ImageColumnKind? _kind;
    private readonly ImageInputShape _vectorShape;

    public UndecodableImageFilter(IHostEnvironment env, IDataView source, string imageColumn, string? pathColumn)
    {
        _host = env.Register(nameof(UndecodableImageFilter));
        _source = source;
        _imageColumn = imageColumn;
        _pathColumn = pathColumn is not null && source.Schema.GetColumnOrNull(pathColumn) is { Type: TextDataViewType } ? pathColumn : null;
        if (source.Schema.GetColumnOrNull(imageColumn) is not null || _pathColumn is null)
        {
            _kind = ImageColumn.ResolveKind(source.Schema, imageColumn, null, out _vectorShape);
        }
    }

    public bool CanShuffle => _source.CanShuffle;

    public DataViewSchema Schema => _source.Schema;

    public long? GetRowCount() => null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var columns = columnsNeeded.Select(c => c.Index);
        if (_kind is not null)
        {
            columns = columns.Append(Schema[_imageColumn].Index);
        }

        if (_pathColumn is not null)
        {
            columns = columns.Append(Schema[_pathColumn].Index);
        }

        DataViewRowCursor input = _source.GetRowCursor(columns.Distinct().Select(i => Schema[i]), rand);
        return new Cursor(this, input);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly UndecodableImageFilter _parent;
        private readonly DataViewRowCursor _input;
        private readonly ImageFeatureReader? _reader;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _pathGetter;
        private readonly float[] _rgb;
        private readonly List<string> _skipped = new();
        private long _position = -1;

        public Cursor(UndecodableImageFilter parent, DataViewRowCursor input)
        {
            _parent = parent;
            _input = input;
            if (parent._kind is { } kind)
            {
                _reader = new ImageFeatureReader(input, parent._imageColumn, kind, parent._vectorShape, ProbeSize, ProbeSize,
                    parent._pathColumn is null ? null : ImageColumn.FindPath(input.Schema, parent._pathColumn));
            }
            else
            {
                _pathGetter = input.GetGetter<ReadOnlyMemory<char>>(input.Schema[parent._pathColumn!]);
            }

            _rgb = new float[3 * ProbeSize * ProbeSize];
        }

        public override DataViewSchema Schema => _input.Schema;

        public override long Position => _position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _input.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => _input.GetGetter<TValue>(column);

        public override bool MoveNext()
        {
            while (_input.MoveNext())
            {
                if (Problem() is not { } problem)
                {
                    _position++;
                    return true;
                }

                _skipped.Add(problem);
            }

            return false;
        }

        private string? Problem()
        {
            if (_reader is not null)
            {
                try
                {
                    _reader.Read(_rgb, _input.Position);
                    return null;
                }
                catch (ImageDecodeException ex)
                {
                    return ex.Message;
                }
            }

            ReadOnlyMemory<char> path = default;
            _pathGetter!(ref path);
            string file = path.ToString();
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                return $"'{file}': cannot be read: {ex.Message}";
            }

            using var bitmap = ImageFeatureReader.Decode(bytes, out string? problem);
            return bitmap is null ? $"'{file}': {problem}" : null;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _input.Dispose();
                if (_skipped.Count > 0)
                {
                    using IChannel ch = _parent._host.Start("Skipping undecodable images");
                    ch.Warning($"Skipped {_skipped.Count} rows whose image in column '{_parent._imageColumn}' could not be decoded; first: " +
                        string.Join("; ", _skipped.Take(5)));
                }
            }

            base.Dispose(disposing);
        }
    }
}
