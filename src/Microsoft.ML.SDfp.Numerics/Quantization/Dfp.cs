using Microsoft.ML.SDfp.Numerics.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>
/// Stateless (shifted) dynamic fixed point arithmetic for one tensor and one format, with the exponent taken from the
/// tensor's own amax. For delayed exponents, auto shift, seeded streams and telemetry use <see cref="TensorQuantizer"/>.
/// </summary>
public static class Dfp
{
    /// <summary>
    /// Smallest effective exponent used. Below it the scale 2^−e would not be an FP32 number; tensors that small are
    /// quantised at this exponent instead, which costs resolution but never saturates.
    /// </summary>
    public const int MinExponent = -126;

    /// <summary>Largest effective exponent used (2^127 is the largest FP32 power of two).</summary>
    public const int MaxExponent = 127;

    /// <summary>
    /// The effective exponent ceil(log2(amax / qmax)) − <paramref name="shift"/>, computed exactly: the smallest integer
    /// e with amax ≤ qmax · 2^e (so exact powers of two need no floating-point fuzz), minus the shift, clamped to
    /// [<see cref="MinExponent"/>, <see cref="MaxExponent"/>].
    /// </summary>
    /// <param name="amax">max |x|, finite and ≥ 0. An all-zero tensor (amax = 0) gets DFP exponent 0, so the result is −shift; any exponent represents zeros exactly.</param>
    /// <param name="format">The number format (its bit width gives qmax).</param>
    /// <param name="shift">The shift s to subtract (usually <see cref="DfpFormat.Shift"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="amax"/> is negative, NaN or infinite.</exception>
    public static int Exponent(double amax, DfpFormat format, int shift)
    {
        ArgumentNullException.ThrowIfNull(format);
        if (!double.IsFinite(amax) || amax < 0)
            throw new ArgumentOutOfRangeException(nameof(amax), amax, $"amax = {amax} must be finite and non-negative.");
        var e = amax == 0 ? 0 : CeilLog2Ratio(amax, format.QMax);
        return (int)Math.Clamp((long)e - shift, MinExponent, MaxExponent);
    }

    /// <summary>Quantises <paramref name="x"/> to integers plus one exponent, from its current amax.</summary>
    /// <param name="x">A floating-point tensor.</param>
    /// <param name="format">Number format; its shift applies, or under auto shift the shift chosen for this tensor. The exponent always comes from x itself (a delayed exponent needs the history a <see cref="TensorQuantizer"/> keeps).</param>
    /// <param name="generator">Random source for stochastic rounding; null uses torch's default generator.</param>
    /// <exception cref="ArgumentException"><paramref name="x"/> holds NaN or ±Inf (the message gives the count).</exception>
    public static DfpTensor Quantize(Tensor x, DfpFormat format, Generator? generator = null)
    {
        var exponent = PrepareCurrent(x, format, out _);
        using var q = QuantizationKernel.Integers(x, exponent, format, generator, collect: false, out _);
        return new DfpTensor(q.to_type(IntegerType(format)), exponent, format);
    }

    /// <summary>Quantises <paramref name="x"/> and returns the FP32 grid values q · 2^e it stands for (fake quantisation).</summary>
    /// <param name="x">A floating-point tensor.</param>
    /// <param name="format">Number format; its shift applies, or under auto shift the shift chosen for this tensor. The exponent always comes from x itself.</param>
    /// <param name="generator">Random source for stochastic rounding; null uses torch's default generator.</param>
    /// <exception cref="ArgumentException"><paramref name="x"/> holds NaN or ±Inf (the message gives the count).</exception>
    public static Tensor FakeQuantize(Tensor x, DfpFormat format, Generator? generator = null)
    {
        var exponent = PrepareCurrent(x, format, out _);
        return QuantizationKernel.FakeQuantize(x, exponent, format, generator, collect: false, out _);
    }

    /// <summary>
    /// Fake-quantises <paramref name="x"/> on the grid of a given exponent: clamp(round(x / 2^exponent), qmin, qmax) ·
    /// 2^exponent. For a static exponent fixed in advance (e.g. calibrated for inference), where x's own amax must not
    /// move the grid; values beyond the grid saturate.
    /// </summary>
    /// <param name="x">A floating-point tensor.</param>
    /// <param name="format">Number format: its bit width and rounding apply; its shift does not (the exponent is already effective).</param>
    /// <param name="exponent">Effective exponent, in [<see cref="MinExponent"/>, <see cref="MaxExponent"/>].</param>
    /// <param name="generator">Random source for stochastic rounding; null uses torch's default generator.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="exponent"/> is outside [MinExponent, MaxExponent].</exception>
    public static Tensor FakeQuantize(Tensor x, DfpFormat format, int exponent, Generator? generator = null)
    {
        CheckFloating(x, nameof(x));
        ArgumentNullException.ThrowIfNull(format);
        format.Validate();
        if (exponent is < MinExponent or > MaxExponent)
            throw new ArgumentOutOfRangeException(nameof(exponent), exponent, $"Exponent {exponent} is outside [{MinExponent}, {MaxExponent}].");
        return QuantizationKernel.FakeQuantize(x, exponent, format, generator, collect: false, out _);
    }

    /// <summary>
    /// Whether an FP32 GEMM over <paramref name="k"/> products of operands in these formats is exact, i.e. equals the
    /// integer dot product times 2^(eA+eW): every partial sum is an integer of magnitude at most
    /// K · |qmin_A| · |qmin_W| = K · 2^(bitsA+bitsW−2), and FP32 holds every integer up to 2^24.
    /// At 8 bits this allows K ≤ 1024 (a 3×3 conv over 113 channels or fewer). Beyond it the layer output is the FP32
    /// rounding of the exact sum, as in any FP32 GEMM.
    /// </summary>
    /// <param name="k">Reduction length: in/groups · k · k for a conv, in for a linear layer.</param>
    /// <param name="activation">Format of the activations, or null when FP32 (then never exact).</param>
    /// <param name="weight">Format of the weights, or null when FP32 (then never exact).</param>
    public static bool IsExactFp32Accumulation(long k, DfpFormat? activation, DfpFormat? weight)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        if (activation is null || weight is null)
            return false;
        var bits = activation.Bits + weight.Bits - 2;
        return bits <= 24 && k <= (1L << (24 - bits));
    }

    /// <summary>The integer dtype <see cref="Quantize"/> stores a format's integers in.</summary>
    /// <param name="format">The number format.</param>
    public static ScalarType IntegerType(DfpFormat format) => format.Bits <= 8 ? ScalarType.Int8 : ScalarType.Int16;

    internal static void CheckFloating(Tensor x, string parameter)
    {
        ArgumentNullException.ThrowIfNull(x, parameter);
        if (!x.is_floating_point())
            throw new ArgumentException($"Only floating-point tensors can be quantised; '{parameter}' has dtype {x.dtype}.", parameter);
    }

    /// <summary>The exponent from x's own amax, with the format's shift or, under auto shift, the chosen one.</summary>
    private static int PrepareCurrent(Tensor x, DfpFormat format, out int shift)
    {
        CheckFloating(x, nameof(x));
        ArgumentNullException.ThrowIfNull(format);
        format.Validate();
        var amax = QuantizationKernel.Amax(x);
        if (!double.IsFinite(amax))
            throw new ArgumentException(
                $"Tensor contains {QuantizationKernel.CountNonFinite(x)} NaN/Inf values (of {x.numel()}); quantising would hide them.",
                nameof(x));
        shift = format.AutoShift ? AutoShift.Choose(x, amax, amax, format) : format.Shift;
        return Exponent(amax, format, shift);
    }

    /// <summary>Smallest integer e with amax ≤ qmax · 2^e. qmax · 2^e is exact in double, so the comparisons are too.</summary>
    private static int CeilLog2Ratio(double amax, long qmax)
    {
        var e = Math.ILogB(amax) - Math.ILogB((double)qmax);
        while (amax > Math.ScaleB((double)qmax, e))
            e++;
        while (amax <= Math.ScaleB((double)qmax, e - 1))
            e--;
        return e;
    }
}
