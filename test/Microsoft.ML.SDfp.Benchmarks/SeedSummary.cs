using System.Globalization;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// The <c>seeds</c> object of a report of several seeds: each configuration's final test accuracy per seed, and paired
/// differences between configurations within a seed. Accuracies and differences are fractions, like
/// <see cref="RunRecord.FinalTestAccuracy"/> (0.0031 is 0.31 pp); <see cref="Statements"/> says the same in words.
/// </summary>
/// <remarks>
/// Within a seed every run starts from the same initial weights and sees the training data in the same order, so the
/// difference between two configurations of one seed removes most of what the seed changes; that is why comparisons are
/// paired by seed rather than made between the configurations' means. A pair needs both runs in every seed, so only
/// configurations completed in every seed enter <see cref="Paired"/>; <see cref="LeftOut"/> names the others and why.
/// A run counts when it completed (a diverged run has no final accuracy of the whole schedule).
/// </remarks>
internal sealed record SeedSummary(
    IReadOnlyList<long> Seeds,
    long PlottedSeed,
    IReadOnlyList<ConfigAcrossSeeds> Configs,
    IReadOnlyList<PairedDifference> Paired,
    IReadOnlyList<string> LeftOut,
    IReadOnlyList<string> Statements)
{
    /// <summary>The target of the paper's comparison: a configuration within 0.3 pp of FP32, here on the mean paired difference.</summary>
    public const double Tolerance = 0.003;

    /// <summary>The <see cref="SeedStatus.Status"/> of a configuration that no input of the seed holds.</summary>
    public const string NotInInputs = "not in the inputs";

    /// <summary>Configurations whose mean paired difference to FP32 is held against <see cref="Tolerance"/>.</summary>
    private static readonly string[] TargetConfigs = { "sdfp8", "auto8" };

    /// <summary>Compares the per-seed reports (one per seed, as <see cref="ExperimentReport.BySeed"/> gives them).</summary>
    public static SeedSummary Compute(IReadOnlyList<ExperimentReport> perSeed, long plottedSeed)
    {
        var seeds = perSeed.Select(r => r.Seed).Order().ToList();
        var order = ExperimentOptions.AllConfigs.ToList();
        var names = perSeed.SelectMany(r => r.Runs).Select(r => r.Config).Distinct()
            .OrderBy(c => order.IndexOf(c) is var i && i >= 0 ? i : int.MaxValue).ToList();

        var configs = new List<ConfigAcrossSeeds>();
        var leftOut = new List<string>();
        foreach (var name in names)
        {
            var counted = new List<SeedValue>();
            var notCounted = new List<SeedStatus>();
            foreach (var report in perSeed.OrderBy(r => r.Seed))
            {
                var run = report.Runs.FirstOrDefault(r => r.Config == name);
                if (run is { Status: "completed", FinalTestAccuracy: { } accuracy })
                    counted.Add(new SeedValue(report.Seed, accuracy));
                else
                    notCounted.Add(new SeedStatus(report.Seed, run is null ? NotInInputs : run.Status.Split('.')[0]));
            }
            configs.Add(new ConfigAcrossSeeds(name, counted, Spread.Of(counted.Select(v => v.Value)), notCounted));
            if (notCounted.Count > 0)
            {
                leftOut.Add($"{name}: " + string.Join("; ", notCounted.GroupBy(n => n.Status).Select(g =>
                    $"{g.Key} (seed{(g.Count() == 1 ? "" : "s")} {string.Join(", ", g.Select(n => n.Seed))})")));
            }
        }

        var inEverySeed = configs.Where(c => c.NotCounted.Count == 0).Select(c => c.Config).ToList();
        var pairs = new List<(string Config, string Baseline)>();
        if (inEverySeed.Contains("fp32"))
            pairs.AddRange(inEverySeed.Where(c => c != "fp32").Select(c => (c, "fp32")));
        // S-DFP against DFP of the same width: the comparison the shift is for.
        foreach (var sdfp in inEverySeed.Where(c => c.StartsWith("sdfp", StringComparison.Ordinal)))
        {
            var dfp = sdfp[1..];
            if (inEverySeed.Contains(dfp))
                pairs.Add((sdfp, dfp));
        }

        var paired = pairs.Select(p => Pair(configs, p.Config, p.Baseline)).ToList();
        var statements = paired.Select(p => p.Statement).ToList();
        foreach (var target in TargetConfigs.Where(names.Contains))
        {
            var label = $"{ExperimentConfig.DisplayName(target)} within {Pp(Tolerance)} pp of FP32 on average (mean paired difference ≥ -{Pp(Tolerance)} pp)";
            statements.Add(paired.FirstOrDefault(p => p.Config == target && p.Baseline == "fp32") is { } d
                // Accuracies are counts over the test set, so a difference of exactly -0.30 pp must not fail on a rounding error.
                ? $"{label}: {(d.Spread.Mean >= -Tolerance - 1e-12 ? "yes" : "no")} ({Signed(d.Spread.Mean)} pp)."
                : $"{label}: not computed ({(inEverySeed.Contains(target) ? "fp32" : target)} is not completed in every seed).");
        }
        return new SeedSummary(seeds, plottedSeed, configs, paired, leftOut, statements);
    }

    private static PairedDifference Pair(IReadOnlyList<ConfigAcrossSeeds> configs, string config, string baseline)
    {
        var of = configs.Single(c => c.Config == config).FinalTestAccuracy;
        var against = configs.Single(c => c.Config == baseline).FinalTestAccuracy;
        var differences = of.Zip(against, (a, b) => new SeedValue(a.Seed, a.Value - b.Value)).ToList();
        var spread = Spread.Of(differences.Select(d => d.Value));
        var higher = differences.Count(d => d.Value > 0);
        var equal = differences.Count(d => d.Value == 0);
        var statement = $"{ExperimentConfig.DisplayName(config)} > {ExperimentConfig.DisplayName(baseline)} in {higher} of {differences.Count} seeds" +
                        (equal > 0 ? $" ({equal} equal)" : "") +
                        $"; mean {Signed(spread.Mean)} ± {Pp(spread.StandardDeviation ?? double.NaN)} pp.";
        return new PairedDifference(config, baseline, differences, spread, higher, statement);
    }

    /// <summary>A fraction in percentage points, two decimals.</summary>
    internal static string Pp(double fraction) => double.IsNaN(fraction) ? "–" : (100 * fraction).ToString("F2", CultureInfo.InvariantCulture);

    /// <summary>A fraction in percentage points with its sign, as the results table writes Δ vs FP32.</summary>
    internal static string Signed(double fraction) => (100 * fraction).ToString("+0.00;-0.00", CultureInfo.InvariantCulture);
}

/// <summary>One configuration's final test accuracy in the seeds that completed it, and why the other seeds do not count.</summary>
internal sealed record ConfigAcrossSeeds(string Config, IReadOnlyList<SeedValue> FinalTestAccuracy, Spread Spread, IReadOnlyList<SeedStatus> NotCounted);

/// <summary>Why a seed's run does not count: <see cref="SeedSummary.NotInInputs"/>, or the run's status ("diverged: ...", first sentence).</summary>
internal sealed record SeedStatus(long Seed, string Status);

/// <summary><c>Config</c> − <c>Baseline</c> within each seed, and how many seeds have <c>Config</c> higher.</summary>
internal sealed record PairedDifference(string Config, string Baseline, IReadOnlyList<SeedValue> Differences, Spread Spread, int Higher, string Statement);

/// <summary>A value of one seed.</summary>
internal sealed record SeedValue(long Seed, double Value);

/// <summary>Mean, sample standard deviation (n − 1 in the denominator; null below 2 values) and n.</summary>
internal sealed record Spread(double Mean, double? StandardDeviation, int N)
{
    public static Spread Of(IEnumerable<double> values)
    {
        var list = values.ToList();
        if (list.Count == 0)
            return new Spread(double.NaN, null, 0);
        var mean = list.Average();
        double? sd = list.Count < 2 ? null : Math.Sqrt(list.Sum(v => (v - mean) * (v - mean)) / (list.Count - 1));
        return new Spread(mean, sd, list.Count);
    }
}
