using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Training.Models;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>One configuration of the comparison: a name and the quantisation policy of the ResNet body.</summary>
internal sealed record ExperimentConfig(string Name, QuantizationPolicy Policy)
{
    /// <summary>Builds a named configuration. S-DFP shifts come from the probe (<paramref name="shifts"/>, keyed by bit width).</summary>
    public static ExperimentConfig Create(string name, long seed, IReadOnlyDictionary<int, (int W, int A, int G)> shifts)
    {
        QuantizationConfig Uniform(DfpFormat format) => QuantizationConfig.Uniform(format) with { Seed = seed };
        QuantizationConfig Shifted(int bits)
        {
            var (w, a, g) = shifts[bits];
            return new QuantizationConfig
            {
                Weight = DfpFormat.SDfp(bits, w),
                Activation = DfpFormat.SDfp(bits, a),
                Error = DfpFormat.SDfp(bits, g),
                Seed = seed,
            };
        }

        var layers = name switch
        {
            "fp32" => QuantizationConfig.Fp32,
            "dfp8" => Uniform(DfpFormat.Dfp(8)),
            "sdfp8" => Shifted(8),
            "auto8" => Uniform(DfpFormat.Auto(8)),
            "dfp6" => Uniform(DfpFormat.Dfp(6)),
            "sdfp6" => Shifted(6),
            // 6-bit recipes beyond the paper (issue 13): the shift picked per tensor, and stochastic rounding of the
            // error, whose small values nearest rounding flushes to zero.
            "auto6" => Uniform(DfpFormat.Auto(6)),
            "sdfp6sr" => Shifted(6) with { Error = DfpFormat.SDfp(6, shifts[6].G) with { Rounding = RoundingMode.Stochastic } },
            "auto6sr" => Uniform(DfpFormat.Auto(6)) with { Error = DfpFormat.Auto(6) with { Rounding = RoundingMode.Stochastic } },
            _ => throw new ArgumentException($"Unknown configuration '{name}'.", nameof(name)),
        };
        return new ExperimentConfig(name, layers.IsFp32 ? QuantizationPolicy.Fp32 : QuantizationPolicy.Body(layers));
    }

    /// <summary>The bit width whose probed shifts <see cref="Create"/> gives <paramref name="name"/>, or null when it uses none.</summary>
    public static int? ProbedBits(string name) => name switch
    {
        "sdfp8" => 8,
        "sdfp6" or "sdfp6sr" => 6,
        _ => null,
    };

    /// <summary>How prose names a configuration: "S-DFP8" for <c>sdfp8</c>, "Auto8" for <c>auto8</c>, ...; unknown names as they are.</summary>
    public static string DisplayName(string name) => name switch
    {
        "fp32" => "FP32",
        "dfp8" => "DFP8",
        "sdfp8" => "S-DFP8",
        "auto8" => "Auto8",
        "dfp6" => "DFP6",
        "sdfp6" => "S-DFP6",
        "auto6" => "Auto6",
        "sdfp6sr" => "S-DFP6, G stochastic",
        "auto6sr" => "Auto6, G stochastic",
        _ => name,
    };

    /// <summary>Human-readable formats of the body's W, A and G.</summary>
    public string Describe() => Policy.Layers.IsFp32
        ? "FP32 everywhere"
        : $"body W={DfpFormat.NameOf(Policy.Layers.Weight)} A={DfpFormat.NameOf(Policy.Layers.Activation)} G={DfpFormat.NameOf(Policy.Layers.Error)}; stem conv and fc FP32";
}
