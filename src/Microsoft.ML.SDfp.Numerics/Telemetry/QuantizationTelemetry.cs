using Microsoft.ML.SDfp.Numerics.IO;
using System.Globalization;
using System.Text;
using System.Text.Json;

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

    /// <summary>Writes all records as CSV (invariant culture, header row) atomically: a temp file renamed over <paramref name="path"/>.</summary>
    /// <param name="path">Destination file; its folder is created if missing.</param>
    public void WriteCsv(string path)
    {
        var records = Records;
        var text = new StringBuilder("layer,role,step,exponent,shift,amax,saturated_fraction,flushed_to_zero_fraction,sqnr_db,non_finite_count\n");
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
        AtomicFile.WriteAllText(path, text.ToString());
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
