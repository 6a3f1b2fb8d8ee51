using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.SDfp.Numerics.Formats;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>
/// Quantisation of contiguous FP32 CPU tensors in one SIMD pass over memory: scale, round, clamp, rescale and (on
/// sampled steps) all statistics together, split over torch's intra-op thread count. The torch-op version needs four
/// to eight passes for the same work.
/// </summary>
/// <remarks>
/// Multiplying by a power of two is exact in FP32 for the exponents <see cref="Dfp.Exponent"/> returns, so the result
/// is bit-identical to <see cref="TorchQuantization"/> under round-half-even. Stochastic rounding here uses a
/// counter-based hash of (seed, element index) instead of torch's generator stream, so the parallel split cannot change
/// the result; the seed itself is drawn from the stream's torch generator.
/// </remarks>
internal static unsafe class FusedQuantization
{
    /// <summary>
    /// Elements per thread before a quantisation is split. The pass is memory-bound, and .NET pool threads compete
    /// with libtorch's OpenMP workers for the same cores: on the 2-core reference machine one thread per 25 MB
    /// activation tensor measured faster than two (see the layer benchmark's sdfp8-1thread variant). Large tensors on
    /// many-core machines still get split.
    /// </summary>
    private const int ElementsPerThread = 1 << 23;

    /// <summary>Exact thread count for benchmarks (0 = automatic: one thread per <see cref="ElementsPerThread"/>).</summary>
    internal static int ThreadOverride
    {
        get => _threadOverride;
        set => _threadOverride = value;
    }

    [ThreadStatic]
    private static int _threadOverride;

    public static bool Applies(Tensor x) =>
        x.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU && x.is_contiguous()
        && x.numel() < int.MaxValue / sizeof(float) && !x.is_sparse;

    /// <summary>max |x|, or NaN when any element is NaN or infinite.</summary>
    public static double Amax(Tensor x)
    {
        var n = checked((int)x.numel());
        if (n == 0)
            return 0;
        fixed (byte* bytes = x.bytes)
        {
            var data = (float*)bytes;
            var chunks = Chunks(n, out var chunkSize);
            var maxima = new float[chunks];
            var nonFinite = new bool[chunks];
            Run(chunks, c =>
            {
                var start = c * chunkSize;
                var end = Math.Min(n, start + chunkSize);
                maxima[c] = ChunkAmax(data + start, end - start, out nonFinite[c]);
            });
            return nonFinite.Any(b => b) ? double.NaN : maxima.Max();
        }
    }

    /// <summary>Writes q (integers) or q · 2^e (fake) for every element into a new tensor.</summary>
    public static Tensor Quantize(Tensor x, int exponent, DfpFormat format, ulong seed, bool fake,
        bool collect, out QuantizationStatistics statistics) =>
        Quantize(x, exponent, format, seed, fake, collect, out statistics, out _);

    /// <summary>
    /// As <see cref="Quantize(Tensor, int, DfpFormat, ulong, bool, bool, out QuantizationStatistics)"/>, and also
    /// measures max |x| in the same pass (NaN when any element is not finite): a delayed exponent then needs one pass
    /// over memory instead of two.
    /// </summary>
    public static Tensor Quantize(Tensor x, int exponent, DfpFormat format, ulong seed, bool fake,
        bool collect, out QuantizationStatistics statistics, out double amax)
    {
        var n = checked((int)x.numel());
        var result = empty(x.shape, ScalarType.Float32, x.device);
        statistics = new QuantizationStatistics(n, 0, 0, 0, 0, 0);
        amax = 0;
        if (n == 0)
            return result;
        var parameters = new Parameters(
            (float)Math.ScaleB(1.0, -exponent), fake ? (float)Math.ScaleB(1.0, exponent) : 1f,
            (float)Math.ScaleB(1.0, exponent), format.QMin, format.QMax,
            format.Rounding == RoundingMode.Stochastic, seed);
        fixed (byte* inBytes = x.bytes)
        fixed (byte* outBytes = result.bytes)
        {
            var input = (float*)inBytes;
            var output = (float*)outBytes;
            var chunks = Chunks(n, out var chunkSize);
            var parts = new QuantizationStatistics[chunks];
            var maxima = new float[chunks];
            var nonFinite = new bool[chunks];
            Run(chunks, c =>
            {
                var start = c * chunkSize;
                var end = Math.Min(n, start + chunkSize);
                parts[c] = collect
                    ? ChunkQuantize<Collect>(input, output, start, end, parameters, out maxima[c], out nonFinite[c])
                    : ChunkQuantize<Skip>(input, output, start, end, parameters, out maxima[c], out nonFinite[c]);
            });
            amax = nonFinite.Any(b => b) ? double.NaN : maxima.Max();
            if (collect)
            {
                var sum = new QuantizationStatistics(0, 0, 0, 0, 0, 0);
                foreach (var p in parts)
                    sum += p;
                statistics = sum;
            }
        }
        return result;
    }

    private readonly record struct Parameters(float Down, float Up, float Grid, float QMin, float QMax, bool Stochastic, ulong Seed);

    private interface IMode
    {
        static abstract bool Enabled { get; }
    }

    private readonly struct Collect : IMode
    {
        public static bool Enabled => true;
    }

    private readonly struct Skip : IMode
    {
        public static bool Enabled => false;
    }

    private static QuantizationStatistics ChunkQuantize<TMode>(float* input, float* output, int start, int end, Parameters p,
        out float amax, out bool nonFinite)
        where TMode : struct, IMode
    {
        var max = Vector256<float>.Zero;
        var bad = Vector256<float>.Zero;
        var limit = Vector256.Create(float.MaxValue);
        long saturated = 0, nonZero = 0, flushed = 0;
        var signal = Vector256<double>.Zero;
        var error = Vector256<double>.Zero;
        var down = Vector256.Create(p.Down);
        var up = Vector256.Create(p.Up);
        var grid = Vector256.Create(p.Grid);
        var qmin = Vector256.Create(p.QMin);
        var qmax = Vector256.Create(p.QMax);
        var seed32 = (uint)(p.Seed ^ (p.Seed >> 32));
        var lanes = Vector256.Create(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u);
        Vector256<int> saturatedLanes = default, nonZeroLanes = default, flushedLanes = default;
        Vector256<float> signalBlock = default, errorBlock = default;
        var blockVectors = 0;
        var i = start;
        for (; i + Vector256<float>.Count <= end; i += Vector256<float>.Count)
        {
            var v = Vector256.Load(input + i);
            var a = Vector256.Abs(v);
            max = Vector256.Max(max, a);
            bad |= ~Vector256.LessThanOrEqual(a, limit);
            var y = v * down;
            Vector256<float> q;
            if (p.Stochastic)
            {
                var floor = Vector256.Floor(y);
                var fraction = y - floor;
                var u = Uniform(Vector256.Create((uint)i) + lanes, seed32);
                q = floor + (Vector256.LessThan(u, fraction) & Vector256<float>.One);
            }
            else
            {
                q = Vector256.Round(y);
            }
            q = Vector256.Min(Vector256.Max(q, qmin), qmax);
            Vector256.Store(q * up, output + i);
            if (TMode.Enabled)
            {
                // Masks are all-ones (-1) per true lane, so subtracting them counts per lane.
                var nz = ~Vector256.Equals(v, Vector256<float>.Zero);
                saturatedLanes -= (Vector256.GreaterThan(y, qmax) | Vector256.LessThan(y, qmin)).AsInt32();
                nonZeroLanes -= nz.AsInt32();
                flushedLanes -= (nz & Vector256.Equals(q, Vector256<float>.Zero)).AsInt32();
                var d = v - q * grid;
                signalBlock += v * v;
                errorBlock += d * d;
                // FP32 partial sums over at most 512 vectors, then double: relative error ~1e-5, far below what a dB figure shows.
                if (++blockVectors == 512)
                {
                    Flush(ref signal, ref error, ref signalBlock, ref errorBlock);
                    blockVectors = 0;
                }
            }
        }
        if (TMode.Enabled)
        {
            Flush(ref signal, ref error, ref signalBlock, ref errorBlock);
            saturated = Vector256.Sum(saturatedLanes.AsInt64Lanes());
            nonZero = Vector256.Sum(nonZeroLanes.AsInt64Lanes());
            flushed = Vector256.Sum(flushedLanes.AsInt64Lanes());
        }
        amax = 0;
        for (var k = 0; k < Vector256<float>.Count; k++)
            amax = Math.Max(amax, max.GetElement(k));
        nonFinite = bad != Vector256<float>.Zero;
        double signalTail = 0, errorTail = 0;
        for (; i < end; i++)
        {
            var v = input[i];
            var abs = Math.Abs(v);
            if (!(abs <= float.MaxValue))
                nonFinite = true;
            else if (abs > amax)
                amax = abs;
            var y = v * p.Down;
            float q;
            if (p.Stochastic)
            {
                var floor = MathF.Floor(y);
                q = floor + (UniformScalar((uint)i, seed32) < y - floor ? 1f : 0f);
            }
            else
            {
                q = MathF.Round(y, MidpointRounding.ToEven);
            }
            q = Math.Min(Math.Max(q, p.QMin), p.QMax);
            output[i] = q * p.Up;
            if (TMode.Enabled)
            {
                if (y > p.QMax || y < p.QMin)
                    saturated++;
                if (v != 0)
                {
                    nonZero++;
                    if (q == 0)
                        flushed++;
                }
                double d = v - (double)(q * p.Grid);
                signalTail += (double)v * v;
                errorTail += d * d;
            }
        }
        return TMode.Enabled
            ? new QuantizationStatistics(end - start, nonZero, saturated, flushed,
                Vector256.Sum(signal) + signalTail, Vector256.Sum(error) + errorTail)
            : default;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Flush(ref Vector256<double> signal, ref Vector256<double> error,
        ref Vector256<float> signalBlock, ref Vector256<float> errorBlock)
    {
        var (sLo, sHi) = Vector256.Widen(signalBlock);
        var (eLo, eHi) = Vector256.Widen(errorBlock);
        signal += sLo + sHi;
        error += eLo + eHi;
        signalBlock = default;
        errorBlock = default;
    }

    private static Vector256<long> AsInt64Lanes(this Vector256<int> lanes)
    {
        var (lo, hi) = Vector256.Widen(lanes);
        return lo + hi;
    }

    private static float ChunkAmax(float* data, int n, out bool nonFinite)
    {
        var max = Vector256<float>.Zero;
        var bad = Vector256<float>.Zero;
        var limit = Vector256.Create(float.MaxValue);
        var i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
        {
            var a = Vector256.Abs(Vector256.Load(data + i));
            max = Vector256.Max(max, a);
            // NaN fails every comparison, so "not ≤ MaxValue" catches NaN and ±Inf together.
            bad |= ~Vector256.LessThanOrEqual(a, limit);
        }
        var result = 0f;
        for (var k = 0; k < Vector256<float>.Count; k++)
            result = Math.Max(result, max.GetElement(k));
        nonFinite = bad != Vector256<float>.Zero;
        for (; i < n; i++)
        {
            var a = Math.Abs(data[i]);
            if (!(a <= float.MaxValue))
                nonFinite = true;
            else if (a > result)
                result = a;
        }
        return result;
    }

    /// <summary>Uniform [0, 1) with 24 bits from a murmur3 finaliser of (index, seed): cheap, stateless, vectorisable.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Uniform(Vector256<uint> index, uint seed)
    {
        var h = index * 0x9E3779B1u + Vector256.Create(seed);
        h ^= Vector256.ShiftRightLogical(h, 16);
        h *= 0x85EBCA6Bu;
        h ^= Vector256.ShiftRightLogical(h, 13);
        h *= 0xC2B2AE35u;
        h ^= Vector256.ShiftRightLogical(h, 16);
        return Vector256.ConvertToSingle(Vector256.ShiftRightLogical(h, 8).AsInt32()) * (1f / (1 << 24));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float UniformScalar(uint index, uint seed)
    {
        var h = index * 0x9E3779B1u + seed;
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        h ^= h >> 16;
        return (h >> 8) * (1f / (1 << 24));
    }

    private static int Chunks(int n, out int chunkSize)
    {
        var threads = Math.Max(1, Math.Min(Math.Min(get_num_threads(), Environment.ProcessorCount), n / ElementsPerThread));
        if (ThreadOverride > 0)
            threads = Math.Max(1, Math.Min(ThreadOverride, n / 4096));
        // Chunk boundaries on multiples of 64 elements keep every chunk's vectors aligned like the whole tensor's.
        chunkSize = ((n + threads - 1) / threads + 63) & ~63;
        return (n + chunkSize - 1) / chunkSize;
    }

    private static void Run(int chunks, Action<int> body)
    {
        if (chunks == 1)
            body(0);
        else
            Parallel.For(0, chunks, body);
    }
}
