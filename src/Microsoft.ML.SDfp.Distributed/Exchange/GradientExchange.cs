using Microsoft.ML.SDfp.Distributed.Mpi;

namespace Microsoft.ML.SDfp.Distributed.Exchange;

/// <summary>
/// Sums a flat vector of gradients over all ranks, either as FP32 or as S-DFP integers (see
/// <see cref="GradientExchangeFormat"/>). The vector is a concatenation of segments (one per parameter tensor); in
/// S-DFP each segment has its own shared exponent.
/// </summary>
/// <remarks>
/// <para>
/// S-DFP follows the project's definition (docs/SDFP.md): for a segment x, qmax = 2^(n-1) - 1 and
/// e = ceil(log2(max|x| / qmax)). Every rank computes its own e, the ranks take the largest with an all-reduce MAX (so
/// no rank overflows), subtract <see cref="Shift"/>, and send q = clamp(round(x / 2^e), -2^(n-1), qmax). The sum of
/// p such integers needs n + ceil(log2 p) bits, so it is reduced as 8-, 16- or 32-bit integers, whichever is the
/// narrowest that holds it; every rank then holds exactly the same sum, times 2^e.
/// </para>
/// <para>
/// A non-finite value on any rank (a NaN or infinite gradient) turns the whole result into NaN on every rank, as an
/// FP32 sum would, so all ranks see the same failure and can skip the step together.
/// </para>
/// </remarks>
public sealed class GradientExchange
{
    private const int NonFinite = int.MaxValue;
    private const int AllZero = int.MinValue;

    private readonly MpiCommunicator _communicator;
    private readonly int[] _segments;
    private readonly int[] _exponents;
    private readonly int _total;
    private readonly int _wireBytes;
    private readonly sbyte[]? _int8;
    private readonly short[]? _int16;
    private readonly int[]? _int32;

    /// <summary>Creates an exchange for vectors made of <paramref name="segmentLengths"/>.</summary>
    /// <param name="communicator">The ranks that sum.</param>
    /// <param name="format">FP32 or S-DFP.</param>
    /// <param name="segmentLengths">Length of each segment (tensor) of the vector, in order; each has its own exponent in S-DFP.</param>
    /// <param name="bits">S-DFP bit width n, 2..24. Default 8. Ignored for FP32.</param>
    /// <param name="shift">S-DFP shift s (exponent e - s), -8..8. Default 0 (plain DFP). Ignored for FP32.</param>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range, or the sum of all ranks would not fit 32 bits.</exception>
    public GradientExchange(MpiCommunicator communicator, GradientExchangeFormat format, IReadOnlyList<int> segmentLengths, int bits = 8, int shift = 0)
    {
        ArgumentNullException.ThrowIfNull(communicator);
        ArgumentNullException.ThrowIfNull(segmentLengths);
        if (!Enum.IsDefined(format))
            throw new ArgumentOutOfRangeException(nameof(format), format, "Not a GradientExchangeFormat value.");
        if (segmentLengths.Any(l => l < 0))
            throw new ArgumentOutOfRangeException(nameof(segmentLengths), "Segment lengths must be >= 0.");
        _communicator = communicator;
        _segments = segmentLengths.ToArray();
        _total = checked(_segments.Sum());
        Format = format;
        Bits = bits;
        Shift = shift;
        if (format == GradientExchangeFormat.Fp32)
        {
            _exponents = [];
            SumBits = 32;
            _wireBytes = sizeof(float);
            return;
        }

        if (bits is < 2 or > 24)
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "The S-DFP gradient exchange takes 2..24 bits.");
        if (shift is < -8 or > 8)
            throw new ArgumentOutOfRangeException(nameof(shift), shift, "The S-DFP gradient exchange takes a shift in -8..8.");
        var needed = bits + (int)Math.Ceiling(Math.Log2(communicator.Size));
        if (needed > 32)
            throw new ArgumentOutOfRangeException(nameof(bits), bits, $"The sum of {communicator.Size} ranks of {bits}-bit integers needs {needed} bits, more than 32.");
        SumBits = needed <= 8 ? 8 : needed <= 16 ? 16 : 32;
        _wireBytes = SumBits / 8;
        _exponents = new int[_segments.Length];
        if (SumBits == 8)
            _int8 = new sbyte[_total];
        else if (SumBits == 16)
            _int16 = new short[_total];
        else
            _int32 = new int[_total];
    }

    /// <summary>The format on the wire.</summary>
    public GradientExchangeFormat Format { get; }

    /// <summary>S-DFP bit width of each rank's integers.</summary>
    public int Bits { get; }

    /// <summary>S-DFP shift.</summary>
    public int Shift { get; }

    /// <summary>Width in bits of the integers the sum is reduced in (32 for FP32).</summary>
    public int SumBits { get; }

    /// <summary>Total length of the vectors this exchange sums.</summary>
    public int Length => _total;

    /// <summary>
    /// Bytes this rank hands to MPI per <see cref="SumInPlace"/>: the values, plus one 4-byte exponent per segment in
    /// S-DFP. A ring all-reduce sends and receives 2(p-1)/p times this per rank (docs/scaling.md).
    /// </summary>
    public long BytesPerStep => (long)_total * _wireBytes + (long)_exponents.Length * sizeof(int);

    /// <summary>What <see cref="BytesPerStep"/> would be with FP32 exchange, for comparison.</summary>
    public long Fp32BytesPerStep => (long)_total * sizeof(float);

    /// <summary>Replaces <paramref name="values"/> on every rank by its sum over all ranks (collective).</summary>
    /// <exception cref="ArgumentException">The length differs from the segments'.</exception>
    public void SumInPlace(Span<float> values)
    {
        if (values.Length != _total)
            throw new ArgumentException($"The exchange was built for {_total} values; got {values.Length}.", nameof(values));
        if (Format == GradientExchangeFormat.Fp32)
        {
            _communicator.AllReduce(values, MpiOperation.Sum);
            return;
        }

        var qmax = (1 << (Bits - 1)) - 1;
        var offset = 0;
        for (var s = 0; s < _segments.Length; offset += _segments[s], s++)
            _exponents[s] = LocalExponent(values.Slice(offset, _segments[s]), qmax);
        _communicator.AllReduce(_exponents.AsSpan(), MpiOperation.Max);
        if (_exponents.Contains(NonFinite))
        {
            values.Fill(float.NaN);
            return;
        }

        var qmin = -(1 << (Bits - 1));
        offset = 0;
        for (var s = 0; s < _segments.Length; offset += _segments[s], s++)
        {
            var segment = values.Slice(offset, _segments[s]);
            var inverse = _exponents[s] == AllZero ? 0.0 : Math.ScaleB(1.0, Shift - _exponents[s]);
            for (var i = 0; i < segment.Length; i++)
            {
                var q = (int)Math.Clamp(Math.Round(segment[i] * inverse, MidpointRounding.ToEven), qmin, qmax);
                if (_int8 is not null) _int8[offset + i] = (sbyte)q;
                else if (_int16 is not null) _int16[offset + i] = (short)q;
                else _int32![offset + i] = q;
            }
        }

        if (_int8 is not null) _communicator.AllReduce(_int8.AsSpan(), MpiOperation.Sum);
        else if (_int16 is not null) _communicator.AllReduce(_int16.AsSpan(), MpiOperation.Sum);
        else _communicator.AllReduce(_int32!.AsSpan(), MpiOperation.Sum);

        offset = 0;
        for (var s = 0; s < _segments.Length; offset += _segments[s], s++)
        {
            var step = _exponents[s] == AllZero ? 0.0 : Math.ScaleB(1.0, _exponents[s] - Shift);
            for (var i = 0; i < _segments[s]; i++)
            {
                var sum = _int8 is not null ? _int8[offset + i] : _int16 is not null ? _int16[offset + i] : _int32![offset + i];
                values[offset + i] = (float)(sum * step);
            }
        }
    }

    /// <summary>e = ceil(log2(max|x| / qmax)), exactly; <see cref="NonFinite"/> for NaN/Inf, <see cref="AllZero"/> for all zeros.</summary>
    internal static int LocalExponent(ReadOnlySpan<float> x, int qmax)
    {
        var amax = 0f;
        foreach (var v in x)
        {
            if (!float.IsFinite(v))
                return NonFinite;
            amax = Math.Max(amax, Math.Abs(v));
        }
        if (amax == 0)
            return AllZero;
        var e = (int)Math.Ceiling(Math.Log2(amax / (double)qmax));
        while (amax > qmax * Math.ScaleB(1.0, e))
            e++;
        while (amax <= qmax * Math.ScaleB(1.0, e - 1))
            e--;
        return e;
    }
}
