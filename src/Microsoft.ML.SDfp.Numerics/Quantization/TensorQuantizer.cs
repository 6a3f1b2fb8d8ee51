using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>
/// Quantises one (layer, role) stream step after step: keeps the amax history for delayed exponents, picks the shift
/// under auto shift, owns the seeded generator of stochastic rounding, refuses non-finite tensors and reports to
/// telemetry.
/// </summary>
/// <remarks>Calls are serialised by a lock, so a quantiser may be shared, but its history is then shared too.</remarks>
public sealed class TensorQuantizer : IDisposable
{
    /// <summary>Number of elements auto shift evaluates its candidates on (a strided sample plus the maximum).</summary>
    public const int AutoShiftSampleSize = 4096;

    private readonly object _gate = new();
    private readonly Queue<double> _history = new();
    private Generator? _generator;

    /// <summary>Creates the quantiser of one stream.</summary>
    /// <param name="layer">Layer name used in telemetry and errors, e.g. "layer1.0.conv1".</param>
    /// <param name="role">Role of the tensors this stream quantises.</param>
    /// <param name="format">Number format; validated here.</param>
    /// <param name="telemetry">Sink for statistics, or null for none.</param>
    /// <param name="seed">Seed of the stochastic-rounding generator of this stream.</param>
    /// <exception cref="ArgumentOutOfRangeException">The format is invalid (the message names the property and value).</exception>
    public TensorQuantizer(string layer, TensorRole role, DfpFormat format, QuantizationTelemetry? telemetry = null, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(format);
        format.Validate();
        Layer = layer;
        Role = role;
        Format = format;
        Telemetry = telemetry;
        Seed = seed;
    }

    /// <summary>Layer name used in telemetry and errors.</summary>
    public string Layer { get; }

    /// <summary>Role of this stream.</summary>
    public TensorRole Role { get; }

    /// <summary>Number format of this stream.</summary>
    public DfpFormat Format { get; }

    /// <summary>Seed of the stochastic-rounding generator.</summary>
    public long Seed { get; }

    /// <summary>Statistics sink, or null. May be swapped between steps.</summary>
    public QuantizationTelemetry? Telemetry { get; set; }

    /// <summary>Effective exponent e − s of the last quantised tensor (0 before the first).</summary>
    public int LastExponent { get; private set; }

    /// <summary>Shift s applied to the last tensor (the chosen one under auto shift).</summary>
    public int LastShift { get; private set; }

    /// <summary>amax of the last quantised tensor.</summary>
    public double LastAmax { get; private set; }

    /// <summary>Number of tensors quantised so far.</summary>
    public long Count { get; private set; }

    /// <summary>The amax of the last <see cref="DfpFormat.HistoryLength"/> tensors, oldest first.</summary>
    public IReadOnlyList<double> AmaxHistory
    {
        get
        {
            lock (_gate)
                return _history.ToArray();
        }
    }

    /// <summary>Quantises <paramref name="x"/> and returns the FP32 grid values q · 2^e (a new tensor).</summary>
    /// <param name="x">A floating-point tensor.</param>
    /// <exception cref="NonFiniteTensorException">x holds NaN or ±Inf; the message names layer and role.</exception>
    public Tensor FakeQuantize(Tensor x)
    {
        var start = QuantizationCounters.Start();
        lock (_gate)
        {
            var result = Run(x, integers: false, out _);
            QuantizationCounters.Stop(Role, start);
            return result;
        }
    }

    /// <summary>Quantises <paramref name="x"/> to integers plus one exponent.</summary>
    /// <param name="x">A floating-point tensor.</param>
    /// <exception cref="NonFiniteTensorException">x holds NaN or ±Inf; the message names layer and role.</exception>
    public DfpTensor Quantize(Tensor x)
    {
        var start = QuantizationCounters.Start();
        lock (_gate)
        {
            using var q = Run(x, integers: true, out var exponent);
            QuantizationCounters.Stop(Role, start);
            return new DfpTensor(q.to_type(Dfp.IntegerType(Format)), exponent, Format);
        }
    }

    /// <summary>Forgets the amax history (for example after loading a checkpoint) and restarts the random stream.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _history.Clear();
            _generator?.Dispose();
            _generator = null;
            Count = 0;
        }
    }

    /// <summary>
    /// Writes everything the next tensor's quantisation depends on: the amax history, the last exponent, shift and
    /// amax, the count and the stochastic-rounding stream's position. A training checkpoint keeps it, so that a resumed
    /// run quantises exactly as an uninterrupted one.
    /// </summary>
    internal void WriteState(BinaryWriter writer)
    {
        lock (_gate)
        {
            writer.Write(_history.Count);
            foreach (var amax in _history)
                writer.Write(amax);
            writer.Write(LastExponent);
            writer.Write(LastShift);
            writer.Write(LastAmax);
            writer.Write(Count);
            using var state = _generator?.get_state();
            var bytes = state is null ? Array.Empty<byte>() : state.data<byte>().ToArray();
            writer.Write(bytes.Length);
            writer.Write(bytes);
        }
    }

    /// <summary>Restores what <see cref="WriteState"/> wrote; <see cref="InvalidDataException"/> when it cannot be this stream's state.</summary>
    internal void ReadState(BinaryReader reader)
    {
        lock (_gate)
        {
            var count = reader.ReadInt32();
            if (count < 0 || count > Format.HistoryLength)
                throw new InvalidDataException($"The saved state of {Layer} {Role} has {count} amax values; its format keeps at most {Format.HistoryLength}.");
            _history.Clear();
            for (var i = 0; i < count; i++)
                _history.Enqueue(reader.ReadDouble());
            LastExponent = reader.ReadInt32();
            LastShift = reader.ReadInt32();
            LastAmax = reader.ReadDouble();
            Count = reader.ReadInt64();
            var length = reader.ReadInt32();
            if (length < 0 || length > 1 << 16)
                throw new InvalidDataException($"The saved state of {Layer} {Role} declares a {length}-byte random-stream state.");
            var bytes = reader.ReadBytes(length);
            if (bytes.Length != length)
                throw new EndOfStreamException($"The saved state of {Layer} {Role} is cut short.");
            _generator?.Dispose();
            _generator = null;
            if (length > 0)
            {
                _generator = new Generator((ulong)Seed);
                using var state = torch.tensor(bytes, dtype: ScalarType.Byte);
                _generator.set_state(state);
            }
        }
    }

    /// <summary>Releases the random generator.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _generator?.Dispose();
            _generator = null;
        }
    }

    /// <summary>
    /// Whether a current exponent is found in one pass by guessing the stream's last one (true, the default) or in
    /// two (an amax scan, then quantisation). The results are bit-identical; tests and A/B benchmarks switch it per thread.
    /// </summary>
    internal static bool GuessExponent
    {
        get => !_twoPass;
        set => _twoPass = !value;
    }

    [ThreadStatic]
    private static bool _twoPass;

    private Tensor Run(Tensor x, bool integers, out int exponent)
    {
        Dfp.CheckFloating(x, nameof(x));
        var telemetry = Telemetry is { Enabled: true } t ? t : null;
        var step = telemetry?.Step;
        var collect = telemetry is { IsSampledStep: true };
        var generator = Format.Rounding == RoundingMode.Stochastic ? _generator ??= new Generator((ulong)Seed) : null;
        Tensor result;
        QuantizationStatistics statistics;
        double amax;
        int shift;

        if (Format.ExponentSource == ExponentSource.Delayed && _history.Count > 0 && QuantizationKernel.FusedApplies(x))
        {
            // The exponent is known before the data is read, so one pass quantises and measures the amax for the history.
            var reference = _history.Max();
            shift = Format.AutoShift ? AutoShift.Choose(x, reference, reference, Format) : Format.Shift;
            exponent = Dfp.Exponent(reference, Format, shift);
            result = QuantizationKernel.QuantizeMeasuringAmax(x, exponent, Format, generator, fake: !integers, collect,
                out statistics, out amax);
            if (!double.IsFinite(amax))
            {
                result.Dispose();
                throw NonFinite(x, amax, telemetry, step);
            }
        }
        else if (Format.ExponentSource == ExponentSource.Current && !Format.AutoShift && Count > 0 && GuessExponent
            && QuantizationKernel.FusedApplies(x))
        {
            // A stream's exponent rarely changes between steps, so quantise with the last one while measuring amax in
            // the same pass, and only quantise again when the measured amax gives another exponent. The bits are
            // those of the two-pass path either way: the exponent used is always the one of this tensor's own amax,
            // and a repeat rounds with the same stochastic draw.
            shift = Format.Shift;
            var guess = LastExponent;
            var seed = QuantizationKernel.Seed(Format, generator);
            result = QuantizationKernel.QuantizeMeasuringAmax(x, guess, Format, seed, fake: !integers, collect,
                out statistics, out amax);
            if (!double.IsFinite(amax))
            {
                result.Dispose();
                throw NonFinite(x, amax, telemetry, step);
            }
            exponent = Dfp.Exponent(amax, Format, shift);
            if (exponent != guess)
            {
                QuantizationCounters.Miss();
                result.Dispose();
                result = QuantizationKernel.QuantizeMeasuringAmax(x, exponent, Format, seed, fake: !integers, collect,
                    out statistics, out _);
            }
        }
        else
        {
            amax = QuantizationKernel.Amax(x);
            if (!double.IsFinite(amax))
                throw NonFinite(x, amax, telemetry, step);
            var reference = Format.ExponentSource == ExponentSource.Delayed && _history.Count > 0 ? _history.Max() : amax;
            shift = Format.AutoShift ? AutoShift.Choose(x, reference, amax, Format) : Format.Shift;
            exponent = Dfp.Exponent(reference, Format, shift);
            result = integers
                ? QuantizationKernel.Integers(x, exponent, Format, generator, collect, out statistics)
                : QuantizationKernel.FakeQuantize(x, exponent, Format, generator, collect, out statistics);
        }

        _history.Enqueue(amax);
        while (_history.Count > Format.HistoryLength)
            _history.Dequeue();
        LastExponent = exponent;
        LastShift = shift;
        LastAmax = amax;
        Count++;

        telemetry?.Record(collect
            ? new TensorStatistics(Layer, Role, step ?? 0, exponent, shift, amax,
                statistics.SaturatedFraction, statistics.FlushedToZeroFraction, statistics.SqnrDb, 0)
            : new TensorStatistics(Layer, Role, step ?? 0, exponent, shift, amax, double.NaN, double.NaN, double.NaN, 0));
        return result;
    }

    private NonFiniteTensorException NonFinite(Tensor x, double amax, QuantizationTelemetry? telemetry, long? step)
    {
        var count = QuantizationKernel.CountNonFinite(x);
        telemetry?.Record(new TensorStatistics(Layer, Role, step ?? 0, LastExponent, LastShift, amax,
            double.NaN, double.NaN, double.NaN, count));
        return new NonFiniteTensorException(Layer, Role, count, x.numel(), step);
    }

    /// <summary>A seed for one (layer, role) stream, derived from a base seed so that streams differ but runs repeat.</summary>
    /// <param name="baseSeed">The run's seed (<see cref="QuantizationConfig.Seed"/>).</param>
    /// <param name="layer">Layer name.</param>
    /// <param name="role">Tensor role.</param>
    public static long StreamSeed(long baseSeed, string layer, TensorRole role)
    {
        // FNV-1a over the name: string.GetHashCode is randomised per process, which would break reproducibility.
        var hash = 14695981039346656037UL;
        foreach (var c in $"{layer}/{role}")
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }
        var mixed = (ulong)baseSeed ^ hash;
        mixed = (mixed ^ (mixed >> 30)) * 0xBF58476D1CE4E5B9UL;
        mixed = (mixed ^ (mixed >> 27)) * 0x94D049BB133111EBUL;
        return (long)((mixed ^ (mixed >> 31)) & long.MaxValue);
    }
}
