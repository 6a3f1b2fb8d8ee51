using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Runtime;

namespace Microsoft.ML.SDfp.Numerics.Telemetry;

/// <summary>
/// Collects per-layer, per-role quantisation statistics. Shared by all quantisers of a model; safe for concurrent use.
/// </summary>
/// <remarks>
/// Exponent, shift and amax cost nothing extra and are recorded on every step. The fractions and the SQNR need the
/// quantised values next to the inputs; they are gathered in the quantising pass itself, but only on steps that are
/// multiples of <see cref="SampleEvery"/>, and are NaN on the others.
/// </remarks>
public sealed class QuantizationTelemetry
{
    private const string CsvHeader = "layer,role,step,exponent,shift,amax,saturated_fraction,flushed_to_zero_fraction,sqnr_db,non_finite_count";

    private readonly object _gate = new();
    private readonly List<TensorStatistics> _records = new();
    private readonly Dictionary<(string Layer, TensorRole Role), TensorStatistics> _latest = new();
    private int _sampleEvery = 1;

    /// <summary>Whether quantisers record anything. Default true; off costs nothing.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Measure full statistics on every N-th step (Step % N == 0), at least 1. Default 1 (every step).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Value below 1.</exception>
    public int SampleEvery
    {
        get => _sampleEvery;
        set
        {
            if (value < 1)
                throw new ArgumentOutOfRangeException(nameof(SampleEvery), value, $"QuantizationTelemetry.SampleEvery = {value} must be at least 1.");
            _sampleEvery = value;
        }
    }

    /// <summary>The current training step, set by the training loop. Default 0.</summary>
    public long Step { get; set; }

    /// <summary>
    /// Maximum number of records kept; when exceeded, the oldest half is dropped (<see cref="Latest"/> is kept). Default
    /// 1,000,000 (about 100 MB), so that a long run cannot exhaust memory.
    /// </summary>
    public int MaxRecords { get; set; } = 1_000_000;

    /// <summary>True when the current step gets full statistics.</summary>
    public bool IsSampledStep => Enabled && Step % SampleEvery == 0;

    /// <summary>A snapshot of all records, oldest first.</summary>
    public IReadOnlyList<TensorStatistics> Records
    {
        get
        {
            lock (_gate)
                return _records.ToArray();
        }
    }

    /// <summary>The last record of every (layer, role), ordered by layer then role.</summary>
    public IReadOnlyList<TensorStatistics> Latest()
    {
        lock (_gate)
            return _latest.Values.OrderBy(r => r.Layer, StringComparer.Ordinal).ThenBy(r => r.Role).ToArray();
    }

    /// <summary>
    /// For each role, the largest fraction of values clipped at the format's range over all layers, taking each
    /// (layer, role)'s latest record with full statistics. Empty when no record has them.
    /// </summary>
    public IReadOnlyDictionary<TensorRole, double> WorstSaturationByRole() =>
        Records.Where(s => double.IsFinite(s.SaturatedFraction))
            .GroupBy(s => (s.Layer, s.Role)).Select(g => g.Last())
            .GroupBy(s => s.Role).ToDictionary(g => g.Key, g => g.Max(s => s.SaturatedFraction));

    /// <summary>Adds one record (quantisers call this; exposed for custom quantisation code).</summary>
    /// <param name="statistics">The record.</param>
    public void Record(TensorStatistics statistics)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        if (!Enabled)
            return;
        lock (_gate)
        {
            if (_records.Count >= Math.Max(2, MaxRecords))
                _records.RemoveRange(0, _records.Count / 2);
            _records.Add(statistics);
            _latest[(statistics.Layer, statistics.Role)] = statistics;
        }
    }

    /// <summary>Forgets all records.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _records.Clear();
            _latest.Clear();
        }
    }

    /// <summary>
    /// Writes all records as CSV (invariant culture, header row) atomically: a temp file renamed over <paramref name="path"/>.
    /// A path ending in <c>.gz</c> is written gzip-compressed.
    /// </summary>
    /// <param name="path">Destination file; its folder is created if missing.</param>
    public void WriteCsv(string path) => WriteCsv(path, Records);

    /// <summary>
    /// Writes the given records (for example a sampled subset of <see cref="Records"/>) as <see cref="WriteCsv(string)"/>
    /// does: CSV, atomically, gzip-compressed when <paramref name="path"/> ends in <c>.gz</c>.
    /// </summary>
    /// <param name="path">Destination file; its folder is created if missing.</param>
    /// <param name="records">The records, written in this order.</param>
    public static void WriteCsv(string path, IEnumerable<TensorStatistics> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var text = new StringBuilder(CsvHeader).Append('\n');
        foreach (var r in records)
        {
            text.Append(Csv(r.Layer)).Append(',').Append(r.Role).Append(',')
                .Append(r.Step.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(r.Exponent.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(r.Shift.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(Number(r.Amax)).Append(',').Append(Number(r.SaturatedFraction)).Append(',')
                .Append(Number(r.FlushedToZeroFraction)).Append(',').Append(Number(r.SqnrDb)).Append(',')
                .Append(r.NonFiniteCount.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        var bytes = new UTF8Encoding(false).GetBytes(text.ToString());
        if (!IsGzip(path))
        {
            AtomicFile.WriteAllBytes(path, bytes);
            return;
        }
        AtomicFile.Write(path, stream =>
        {
            // Disposed before AtomicFile flushes the file, so that the gzip trailer is on disk before the rename.
            using var gzip = new GZipStream(stream, CompressionLevel.SmallestSize, leaveOpen: true);
            gzip.Write(bytes);
        });
    }

    /// <summary>
    /// Reads records written by <see cref="WriteCsv(string)"/>, e.g. to plot or compare runs after the fact. A path ending
    /// in <c>.gz</c> is read as gzip-compressed CSV.
    /// </summary>
    /// <param name="path">A telemetry CSV file, or a gzip-compressed one ending in <c>.gz</c>.</param>
    /// <returns>The records in file order.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The header or a row is not what <see cref="WriteCsv(string)"/> writes, or a <c>.gz</c> file is not valid gzip; the
    /// message names the file (and the line, for a bad row).
    /// </exception>
    public static IReadOnlyList<TensorStatistics> ReadCsv(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Telemetry CSV '{path}' does not exist.", path);
        var gzip = IsGzip(path);
        try
        {
            using var file = File.OpenRead(path);
            using var reader = new StreamReader(gzip ? new GZipStream(file, CompressionMode.Decompress) : file, Encoding.UTF8);
            return ReadCsv(reader, path);
        }
        // The decompressor's messages name neither the file nor the cause; the header and row errors already name the file.
        catch (InvalidDataException e) when (gzip && !e.Message.StartsWith($"'{path}'", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"'{path}' is not a valid gzip-compressed telemetry CSV (damaged or not gzip): {e.Message}", e);
        }
    }

    private static List<TensorStatistics> ReadCsv(StreamReader reader, string path)
    {
        var records = new List<TensorStatistics>();
        var header = reader.ReadLine();
        if (header != CsvHeader)
            throw new InvalidDataException($"'{path}' line 1 is not a telemetry CSV header; expected '{CsvHeader}'.");
        var lineNumber = 1;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0)
                continue;
            var fields = SplitCsv(line);
            try
            {
                if (fields.Count != 10)
                    throw new FormatException($"expected 10 fields, found {fields.Count}");
                var c = CultureInfo.InvariantCulture;
                records.Add(new TensorStatistics(
                    fields[0],
                    Enum.Parse<TensorRole>(fields[1]),
                    long.Parse(fields[2], NumberStyles.Integer, c),
                    int.Parse(fields[3], NumberStyles.Integer, c),
                    int.Parse(fields[4], NumberStyles.Integer, c),
                    double.Parse(fields[5], NumberStyles.Float, c),
                    double.Parse(fields[6], NumberStyles.Float, c),
                    double.Parse(fields[7], NumberStyles.Float, c),
                    double.Parse(fields[8], NumberStyles.Float, c),
                    long.Parse(fields[9], NumberStyles.Integer, c)));
            }
            catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
            {
                throw new InvalidDataException($"'{path}' line {lineNumber} is not a telemetry record: {e.Message}", e);
            }
        }
        return records;
    }

    private static bool IsGzip(string path) => path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);

    private static List<string> SplitCsv(string line)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (ch == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(ch);
                }
            }
            else if (ch == '"')
            {
                quoted = true;
            }
            else if (ch == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else
            {
                field.Append(ch);
            }
        }
        fields.Add(field.ToString());
        return fields;
    }

    /// <summary>
    /// Writes all records as a JSON array atomically. Non-finite numbers (+∞ SQNR, NaN on unsampled steps) are written
    /// as the strings "Infinity", "-Infinity" and "NaN", since JSON has no such numbers.
    /// </summary>
    /// <param name="path">Destination file; its folder is created if missing.</param>
    public void WriteJson(string path)
    {
        var records = Records;
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartArray();
            foreach (var r in records)
            {
                writer.WriteStartObject();
                writer.WriteString("layer", r.Layer);
                writer.WriteString("role", r.Role.ToString());
                writer.WriteNumber("step", r.Step);
                writer.WriteNumber("exponent", r.Exponent);
                writer.WriteNumber("shift", r.Shift);
                WriteNumber(writer, "amax", r.Amax);
                WriteNumber(writer, "saturatedFraction", r.SaturatedFraction);
                WriteNumber(writer, "flushedToZeroFraction", r.FlushedToZeroFraction);
                WriteNumber(writer, "sqnrDb", r.SqnrDb);
                writer.WriteNumber("nonFiniteCount", r.NonFiniteCount);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        AtomicFile.WriteAllBytes(path, stream.ToArray());
    }

    private static void WriteNumber(Utf8JsonWriter writer, string name, double value)
    {
        if (double.IsFinite(value))
            writer.WriteNumber(name, value);
        else
            writer.WriteString(name, double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
    }

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Csv(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) < 0 ? value : "\"" + value.Replace("\"", "\"\"") + "\"";
}
