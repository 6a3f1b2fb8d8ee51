using System.Globalization;
using Microsoft.ML.SDfp.Numerics.Quantization;

namespace Microsoft.ML.SDfp.Numerics.Formats;

/// <summary>
/// One (shifted) dynamic fixed point number format for one tensor role: n-bit integers that share one
/// power-of-two exponent per tensor, x' = q · 2^(e − s), with q in [<see cref="QMin"/>, <see cref="QMax"/>].
/// </summary>
/// <remarks>
/// The record is immutable but not validated on construction, so that <c>with</c> expressions can move several
/// properties at once; every consumer calls <see cref="Validate"/>, which names the offending property and value.
/// </remarks>
public sealed partial record DfpFormat
{
    /// <summary>Smallest supported bit width; 2 bits still has a sign and one magnitude bit.</summary>
    public const int MinBits = 2;

    /// <summary>Largest supported bit width; beyond 16, products of two operands no longer fit FP32 exactly.</summary>
    public const int MaxBits = 16;

    /// <summary>Largest shift magnitude accepted; far beyond any useful value, it only guards against typos.</summary>
    public const int MaxShiftMagnitude = 32;

    /// <summary>Bit width n including the sign, 2..16. Default 8.</summary>
    public int Bits { get; init; } = 8;

    /// <summary>
    /// Shift s subtracted from the DFP exponent: s &gt; 0 buys resolution and saturates the largest values, s &lt; 0
    /// buys headroom. 0 (the default) is plain DFP. Ignored when <see cref="AutoShift"/> is on.
    /// </summary>
    public int Shift { get; init; }

    /// <summary>Rounding of scaled values to integers. Default <see cref="RoundingMode.NearestEven"/>.</summary>
    public RoundingMode Rounding { get; init; } = RoundingMode.NearestEven;

    /// <summary>Where the exponent comes from. Default <see cref="Formats.ExponentSource.Current"/>.</summary>
    public ExponentSource ExponentSource { get; init; } = ExponentSource.Current;

    /// <summary>Number of earlier steps whose amax the delayed exponent looks at, at least 1. Default 16.</summary>
    public int HistoryLength { get; init; } = 16;

    /// <summary>
    /// Beyond the paper: choose the shift per tensor per step in [<see cref="AutoShiftMin"/>, <see cref="AutoShiftMax"/>]
    /// by minimising the quantisation mean squared error (under <see cref="MaxSaturatedFraction"/> when set).
    /// Default off.
    /// </summary>
    public bool AutoShift { get; init; }

    /// <summary>Smallest shift auto shift may pick. Default 0 (plain DFP).</summary>
    public int AutoShiftMin { get; init; }

    /// <summary>Largest shift auto shift may pick. Default 4.</summary>
    public int AutoShiftMax { get; init; } = 4;

    /// <summary>
    /// Optional cap on the fraction of values auto shift may saturate, in [0, 1]; a candidate above the cap is only
    /// chosen when no candidate meets it (then the least saturating one wins). Default null (no cap).
    /// </summary>
    public double? MaxSaturatedFraction { get; init; }

    /// <summary>Largest integer, 2^(Bits−1) − 1.</summary>
    public long QMax => (1L << (Bits - 1)) - 1;

    /// <summary>Smallest integer, −2^(Bits−1).</summary>
    public long QMin => -(1L << (Bits - 1));

    /// <summary>Plain DFP(n): shift 0, round half to even, current exponent.</summary>
    /// <param name="bits">Bit width, 2..16.</param>
    public static DfpFormat Dfp(int bits) => Validated(new DfpFormat { Bits = bits });

    /// <summary>S-DFP(n, s): DFP with the exponent lowered by <paramref name="shift"/>.</summary>
    /// <param name="bits">Bit width, 2..16.</param>
    /// <param name="shift">Shift s; positive trades headroom for resolution.</param>
    public static DfpFormat SDfp(int bits, int shift) => Validated(new DfpFormat { Bits = bits, Shift = shift });

    /// <summary>n-bit format whose shift is chosen automatically per tensor and step in [0, 4].</summary>
    /// <param name="bits">Bit width, 2..16.</param>
    public static DfpFormat Auto(int bits) => Validated(new DfpFormat { Bits = bits, AutoShift = true });

    /// <summary>Checks every property.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A property is out of range; the message names it and its value.</exception>
    public void Validate()
    {
        if (Bits is < MinBits or > MaxBits)
            throw Invalid(nameof(Bits), Bits, $"must be in [{MinBits}, {MaxBits}]");
        if (Math.Abs(Shift) > MaxShiftMagnitude)
            throw Invalid(nameof(Shift), Shift, $"must be in [-{MaxShiftMagnitude}, {MaxShiftMagnitude}]");
        if (!Enum.IsDefined(Rounding))
            throw Invalid(nameof(Rounding), Rounding, "is not a defined RoundingMode");
        if (!Enum.IsDefined(ExponentSource))
            throw Invalid(nameof(ExponentSource), ExponentSource, "is not a defined ExponentSource");
        if (HistoryLength < 1)
            throw Invalid(nameof(HistoryLength), HistoryLength, "must be at least 1");
        if (Math.Abs(AutoShiftMin) > MaxShiftMagnitude)
            throw Invalid(nameof(AutoShiftMin), AutoShiftMin, $"must be in [-{MaxShiftMagnitude}, {MaxShiftMagnitude}]");
        if (Math.Abs(AutoShiftMax) > MaxShiftMagnitude)
            throw Invalid(nameof(AutoShiftMax), AutoShiftMax, $"must be in [-{MaxShiftMagnitude}, {MaxShiftMagnitude}]");
        if (AutoShiftMax < AutoShiftMin)
            throw Invalid(nameof(AutoShiftMax), AutoShiftMax, $"must not be below AutoShiftMin ({AutoShiftMin})");
        if (MaxSaturatedFraction is { } cap && !(cap >= 0 && cap <= 1))
            throw Invalid(nameof(MaxSaturatedFraction), cap, "must be in [0, 1]");
    }

    /// <summary>The name of a role's format, where null (no quantisation) is "FP32": the one way formats become text.</summary>
    /// <param name="format">A format, or null for FP32.</param>
    public static string NameOf(DfpFormat? format) => format?.ToString() ?? "FP32";

    /// <summary>Short name: "DFP8", "S-DFP8(s=2)", "Auto8", "S-DFP8(s=1,stochastic)", "DFP8(delayed,h=16)".</summary>
    public override string ToString()
    {
        var name = AutoShift ? $"Auto{Bits}" : Shift == 0 ? $"DFP{Bits}" : $"S-DFP{Bits}";
        var options = new List<string>();
        if (AutoShift && (AutoShiftMin != 0 || AutoShiftMax != 4))
            options.Add($"s={AutoShiftMin}..{AutoShiftMax}");
        else if (!AutoShift && Shift != 0)
            options.Add($"s={Shift}");
        if (AutoShift && MaxSaturatedFraction is { } cap)
            options.Add("sat<=" + cap.ToString("R", CultureInfo.InvariantCulture));
        if (Rounding == RoundingMode.Stochastic)
            options.Add("stochastic");
        if (ExponentSource == ExponentSource.Delayed)
            options.Add($"delayed,h={HistoryLength}");
        return options.Count == 0 ? name : $"{name}({string.Join(',', options)})";
    }

    /// <summary>
    /// Parses the short names <see cref="ToString"/> writes, case-insensitively: "DFP8", "S-DFP8(s=2)", "Auto8",
    /// "Auto8(s=0..6,sat&lt;=0.01)", "S-DFP8(s=1,stochastic)", "DFP8(delayed,h=16)", "S-DFP6(s=-1,delayed)".
    /// </summary>
    /// <param name="text">The format name.</param>
    /// <exception cref="FormatException">The text is not a format name; the message quotes it and says what was expected.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The name parses but a value is out of range (names the property).</exception>
    public static DfpFormat Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var match = NamePattern().Match(text.Trim());
        if (!match.Success)
            throw new FormatException($"'{text}' is not a DFP format; expected e.g. DFP8, S-DFP8(s=2), Auto8 or S-DFP8(s=1,stochastic).");
        var kind = match.Groups["kind"].Value.ToUpperInvariant();
        var format = new DfpFormat { Bits = int.Parse(match.Groups["bits"].Value, CultureInfo.InvariantCulture), AutoShift = kind == "AUTO" };
        var shiftGiven = false;
        foreach (var raw in match.Groups["options"].Success ? match.Groups["options"].Value.Split(',') : [])
        {
            var option = raw.Trim();
            var lower = option.ToLowerInvariant();
            if (lower == "stochastic")
                format = format with { Rounding = RoundingMode.Stochastic };
            else if (lower == "delayed")
                format = format with { ExponentSource = ExponentSource.Delayed };
            else if (lower.StartsWith("h=", StringComparison.Ordinal))
                format = format with { ExponentSource = ExponentSource.Delayed, HistoryLength = Integer(option[2..], text) };
            else if (lower.StartsWith("sat<=", StringComparison.Ordinal) && format.AutoShift)
                format = format with { MaxSaturatedFraction = double.TryParse(option[5..], NumberStyles.Float, CultureInfo.InvariantCulture, out var cap) ? cap : throw Bad(option, text) };
            else if (lower.StartsWith("s=", StringComparison.Ordinal) && format.AutoShift && option.Contains(".."))
            {
                var range = option[2..].Split("..");
                format = format with { AutoShiftMin = Integer(range[0], text), AutoShiftMax = Integer(range[1], text) };
            }
            else if (lower.StartsWith("s=", StringComparison.Ordinal) && !format.AutoShift)
            {
                format = format with { Shift = Integer(option[2..], text) };
                shiftGiven = true;
            }
            else
                throw Bad(option, text);
        }
        if (kind == "S-DFP" && !shiftGiven)
            throw new FormatException($"'{text}': S-DFP needs a shift, e.g. S-DFP8(s=2).");
        format.Validate();
        return format;

        static int Integer(string value, string text) =>
            int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
                ? v
                : throw new FormatException($"'{text}': '{value}' is not an integer.");

        static FormatException Bad(string option, string text) =>
            new($"'{text}': unknown option '{option}' (expected s=N, s=A..B and sat<=F for Auto, stochastic, delayed, h=N).");
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^(?<kind>S-DFP|DFP|Auto)(?<bits>\d{1,2})(\((?<options>[^()]*)\))?$",
        System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex NamePattern();

    private static DfpFormat Validated(DfpFormat format)
    {
        format.Validate();
        return format;
    }

    private static ArgumentOutOfRangeException Invalid(string property, object value, string rule) =>
        new(property, value, $"DfpFormat.{property} = {Convert.ToString(value, CultureInfo.InvariantCulture)} {rule}.");
}
