using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Runtime;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>Writes <c>fashion-mnist.json</c>, <c>fashion-mnist.md</c> and the PNG plots, each atomically.</summary>
internal static class ResultsReport
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    /// <summary>Runs whose per-layer exponent and saturation are plotted: one S-DFP run and the DFP run.</summary>
    private static readonly string[] DetailRuns = { "sdfp8", "dfp8" };

    /// <summary>Writes the report; <paramref name="telemetry"/> is that of the runs of <paramref name="report"/>'s own seed, the one its plots show.</summary>
    public static void Write(string folder, ExperimentReport report, IReadOnlyDictionary<string, IReadOnlyList<TensorStatistics>> telemetry)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(Path.Combine(folder, "fashion-mnist.json"), JsonSerializer.Serialize(report, Json));
        var images = ResultsPlots.Draw(folder, report, telemetry, DetailRuns);
        AtomicFile.WriteAllText(Path.Combine(folder, "fashion-mnist.md"), Markdown(report, telemetry, images));
    }

    private static string Markdown(ExperimentReport r, IReadOnlyDictionary<string, IReadOnlyList<TensorStatistics>> telemetry, ResultsPlots.Images images)
    {
        var c = CultureInfo.InvariantCulture;
        var bySeed = r.BySeed();
        // One seed renders as it always has; several add the Seeds section and a seed per table.
        var multi = bySeed.Count > 1;
        var model = ExperimentModel.DisplayName(r.Model);
        var md = new StringBuilder();
        md.AppendLine($"# Fashion-MNIST: FP32 vs DFP vs S-DFP ({model})");
        md.AppendLine();
        if (!r.Complete)
        {
            md.AppendLine(multi
                ? $"> **PARTIAL RESULTS**: {bySeed.Sum(s => s.Runs.Count)} of {bySeed.Sum(s => s.PlannedConfigs.Count)} runs (configurations × seeds) finished when this file was written; " +
                  "a run was still in progress or was interrupted. Do not read these as a complete experiment."
                : $"> **PARTIAL RESULTS**: {r.Runs.Count} of {r.PlannedConfigs.Count} configurations finished when this file was written; " +
                  "the run was still in progress or was interrupted. Do not read these as a complete experiment.");
            md.AppendLine();
        }
        md.AppendLine($"**{Capitalise(r.Mode)} mode.** {r.TrainSize:N0} training images (the first {r.TrainSize:N0} of the training file), " +
                      $"evaluated on {r.TestSize:N0} test images (the first {r.TestSize:N0} of `t10k`) after every epoch; {r.Epochs} epochs, batch {r.BatchSize}, " +
                      $"peak learning rate {r.LearningRate.ToString(c)}, " + (multi ? $"seeds {SeedList(bySeed)}" : $"seed {r.Seed}") +
                      (r.Sources.Count == 0 && !multi ? $", {r.Threads} torch threads." : "; torch threads per invocation below."));
        md.AppendLine();
        var sources = bySeed.SelectMany(s => s.Sources.Select(source => (s.Seed, Source: source))).ToList();
        if (sources.Count == 0)
        {
            md.AppendLine("Command:");
            md.AppendLine();
            md.AppendLine("```");
            md.AppendLine(r.Command);
            md.AppendLine("```");
        }
        else
        {
            md.AppendLine(multi
                ? $"This report merges {sources.Count} invocations of the same experiment (same data, epochs and recipe) with seeds {SeedList(bySeed)}, put together with:"
                : $"This report merges {sources.Count} invocations of the same experiment (same data, seed, epochs and recipe), put together with:");
            md.AppendLine();
            md.AppendLine("```");
            foreach (var (_, source) in sources)
                md.AppendLine(source.Command);
            md.AppendLine(r.Command);
            md.AppendLine("```");
            md.AppendLine();
            md.AppendLine("| Invocation | " + (multi ? "Seed | " : "") + "Configs | Torch threads | Step timing | Commit | Started → finished (UTC) |");
            md.AppendLine("|---|" + (multi ? "---|" : "") + "---|---|---|---|---|");
            for (var i = 0; i < sources.Count; i++)
            {
                var (seed, s) = sources[i];
                md.AppendLine($"| {i + 1} | {(multi ? $"{seed} | " : "")}{(s.Configs.Count == 0 ? "–" : string.Join(", ", s.Configs))} | {s.Threads} | {(s.StepTiming ? "yes" : "–")} | " +
                              $"`{s.Commit[..Math.Min(s.Commit.Length, 12)]}` | {s.StartedUtc:yyyy-MM-dd HH:mm} → {s.FinishedUtc:HH:mm} |");
            }
        }
        md.AppendLine();
        md.AppendLine($"Recipe: {r.Schedule}. Model: CIFAR-style {model}, 1 input channel, 28×28 input. In quantised runs the body's " +
                      "convolutions quantise weights (W), activations (A) and errors (G); the stem conv, the classifier, batch norm, the residual adds, " +
                      "pooling, the loss and the SGD master weights stay FP32. " +
                      (multi
                          ? "Within a seed, every run starts from the same initial weights and sees the training data in the same order; " +
                            "the seed sets both, and the rounding streams."
                          : "Every run starts from the same initial weights (same seed)."));
        md.AppendLine();
        md.AppendLine($"Built from commit `{r.Commit}`. Machine: {r.Machine}. Started {r.StartedUtc:yyyy-MM-dd HH:mm} UTC, written {r.FinishedUtc:yyyy-MM-dd HH:mm} UTC. " +
                      "The machine was shared with other jobs, so wall times and throughput are noisy; the step-time ratio below is measured interleaved to cancel that.");
        md.AppendLine();
        md.AppendLine("The test set is only used for reporting (no model selection, no early stopping), so every epoch's figure is an honest test accuracy.");
        md.AppendLine();

        if (r.Seeds is { } summary)
            AppendSeeds(md, summary, images.Seeds);

        md.AppendLine("## Results");
        md.AppendLine();
        foreach (var seed in bySeed)
        {
            if (multi)
            {
                md.AppendLine($"### Seed {seed.Seed}");
                md.AppendLine();
            }
            AppendResultsTable(md, seed);
            md.AppendLine();
        }
        md.AppendLine("Wall time includes the per-epoch test evaluation and telemetry sampling (quantised runs record full statistics on about 60 steps).");
        md.AppendLine();
        if (images.Accuracy is not null)
        {
            if (multi)
            {
                md.AppendLine($"Test accuracy per epoch of seed {r.Seed} (the curves and the telemetry plots of this report show one seed; `fashion-mnist-merge --plots-seed N` picks another):");
                md.AppendLine();
            }
            md.AppendLine($"![Test accuracy per epoch]({images.Accuracy})");
            md.AppendLine();
        }

        md.AppendLine("## How the S-DFP shifts were picked");
        md.AppendLine();
        if (bySeed.All(s => s.ShiftProbes.Count == 0))
        {
            md.AppendLine("No S-DFP configuration was run.");
        }
        foreach (var seed in bySeed)
        {
            foreach (var probe in seed.ShiftProbes)
                AppendProbe(md, probe, model, multi ? $"Seed {seed.Seed}, {probe.Bits}-bit probe" : $"{probe.Bits}-bit probe");
        }

        md.AppendLine("## Step time: S-DFP8 vs FP32");
        md.AppendLine();
        if (bySeed.All(s => s.StepTiming is null))
        {
            md.AppendLine("Not measured in this run.");
            md.AppendLine();
        }
        foreach (var seed in bySeed.Where(s => s.StepTiming is not null))
        {
            if (multi)
            {
                md.AppendLine($"### Seed {seed.Seed}");
                md.AppendLine();
            }
            AppendStepTiming(md, seed.StepTiming!, model);
            md.AppendLine();
        }

        md.AppendLine("## Quantisation telemetry");
        md.AppendLine();
        if (multi && telemetry.Count > 0)
        {
            var without = bySeed.Where(s => s.Runs.Any(run => run.TelemetryCsv is null && new[] { run.WeightFormat, run.ActivationFormat, run.ErrorFormat }.Any(f => f != DfpFormat.NameOf(null)))).Select(s => s.Seed).ToList();
            md.AppendLine($"The plots and the table of this section show seed {r.Seed}." + (without.Count == 0 ? "" :
                $" The telemetry of seed{(without.Count == 1 ? "" : "s")} {string.Join(", ", without)} is left out of this folder to keep it small; " +
                "it stays in the output folders of the invocations listed above (`fashion-mnist-merge --all-telemetry` keeps it here)."));
            md.AppendLine();
        }
        if (images.Flush is not null)
        {
            md.AppendLine("Fraction of the non-zero errors (G, the gradients flowing into each layer's output) that quantise to zero, averaged over the quantised layers, per sampled step:");
            md.AppendLine();
            md.AppendLine($"![Errors flushed to zero]({images.Flush})");
            md.AppendLine();
            AppendFlushTable(md, telemetry);
        }
        foreach (var (run, roleImages) in images.Detail)
        {
            md.AppendLine($"### {run}: per-layer exponent and saturation over training");
            md.AppendLine();
            md.AppendLine("| Role | Exponent (e − s) | Saturated fraction |");
            md.AppendLine("|---|---|---|");
            foreach (var (role, exponent, saturation) in roleImages)
                md.AppendLine($"| {role} | ![{run} {role} exponent]({exponent}) | ![{run} {role} saturation]({saturation}) |");
            md.AppendLine();
        }
        md.AppendLine("The telemetry the plots are drawn from is in `fashion-mnist-telemetry-<config>.csv.gz` (gzip-compressed CSV, read by `QuantizationTelemetry.ReadCsv`)" +
                      (bySeed.Any(s => s.Seed != bySeed[0].Seed && s.Runs.Any(run => run.TelemetryCsv is not null)) ? $"; seeds other than {bySeed[0].Seed} add `-seed<N>` to the name" : "") + ": " +
                      "every record of the sampled steps (those with saturation, flush-to-zero and SQNR); of the other steps, per layer and role " +
                      $"and per {TelemetrySampling.BucketSteps(TelemetrySampling.TotalSteps(r.TrainSize, r.BatchSize, r.Epochs))} steps, the records with the lowest and the highest exponent.");
        md.AppendLine();
        return md.ToString();
    }

    private static void AppendResultsTable(StringBuilder md, ExperimentReport r)
    {
        var c = CultureInfo.InvariantCulture;
        md.AppendLine("| Config | W | A | G | Test accuracy per epoch | Final | Δ vs FP32 | Wall time | Train img/s | RSS epoch 1 → N | Status |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        var fp32 = r.Runs.FirstOrDefault(x => x.Config == "fp32")?.FinalTestAccuracy;
        foreach (var run in r.Runs)
        {
            var perEpoch = string.Join(", ", run.TestAccuracyPerEpoch.Select(a => (100 * a).ToString("F2", c)));
            var final = run.FinalTestAccuracy is { } f ? (100 * f).ToString("F2", c) + " %" : "–";
            var delta = run.FinalTestAccuracy is { } g && fp32 is { } b && run.Config != "fp32" ? SeedSummary.Signed(g - b) + " pp" : "–";
            var rss = run.RssEpoch1MiB is { } r1 && run.RssEpochNMiB is { } rn ? $"{r1:F0} → {rn:F0} MiB" : "–";
            var status = (run.Status == "completed" ? "completed" : run.Status.Split('.')[0])
                         + (run.ResumedAfterEpoch is { } resumed ? $" (resumed from its checkpoint after epoch {resumed}; wall time and telemetry from then on)" : "");
            md.AppendLine($"| {run.Config} | {run.WeightFormat} | {run.ActivationFormat} | {run.ErrorFormat} | {perEpoch} | {final} | {delta} | " +
                          $"{run.WallTimeSeconds.ToString("F0", c)} s | {run.TrainImagesPerSecond.ToString("F0", c)} | {rss} | {status} |");
        }
    }

    private static void AppendProbe(StringBuilder md, ShiftProbeResult probe, string model, string heading)
    {
        var c = CultureInfo.InvariantCulture;
        md.AppendLine($"**{heading}**: the same {model} from the same initial weights, {probe.Steps} training steps (constant learning rate, training data only) " +
                      $"with S-DFP{probe.Bits}(s) on W, A and G, once per candidate s = 0..{probe.Candidates.Count - 1}. S-DFP trades clamping of the largest values " +
                      "for resolution of the small ones, so for each role we pick the largest shift whose mean saturated fraction stays within " +
                      $"{Percent(probe.SaturationBudget)} of the elements. Picked: **W s={probe.ChosenShifts["Weight"]}, A s={probe.ChosenShifts["Activation"]}, G s={probe.ChosenShifts["Error"]}**.");
        md.AppendLine();
        md.AppendLine("| Shift | W saturated | W flushed to 0 | A saturated | A flushed to 0 | G saturated | G flushed to 0 | G SQNR |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var candidate in probe.Candidates)
        {
            RoleStatistics Of(string role) => candidate.Roles.Single(x => x.Role == role);
            var (w, a, g) = (Of("Weight"), Of("Activation"), Of("Error"));
            md.AppendLine($"| {candidate.Shift}{(candidate.Failure is null ? "" : " (diverged)")} | {Percent(w.MeanSaturatedFraction)} | {Percent(w.MeanFlushedToZeroFraction)} | " +
                          $"{Percent(a.MeanSaturatedFraction)} | {Percent(a.MeanFlushedToZeroFraction)} | {Percent(g.MeanSaturatedFraction)} | {Percent(g.MeanFlushedToZeroFraction)} | {g.MeanSqnrDb.ToString("F1", c)} dB |");
        }
        md.AppendLine();
    }

    private static void AppendStepTiming(StringBuilder md, StepTimingResult t, string model)
    {
        var c = CultureInfo.InvariantCulture;
        md.AppendLine($"One training step (forward, backward, SGD update) of {model} at batch {t.BatchSize}, {t.ImageSize}×{t.ImageSize}, {t.Threads} threads, " +
                      $"FP32 and {t.Quantized} models taking turns for {t.Rounds} rounds (order alternating) after 2 warm-up steps each, in the same process, " +
                      (t.RetainedFreedMemory ? "with freed memory retained (`--retain-memory`):" : "with glibc's default allocator:"));
        md.AppendLine();
        md.AppendLine("| Model | Median step | Steps (ms) |");
        md.AppendLine("|---|---|---|");
        md.AppendLine($"| FP32 | {t.Fp32MedianMs.ToString("F0", c)} ms | {string.Join(", ", t.Fp32Ms.Select(v => v.ToString("F0", c)))} |");
        md.AppendLine($"| {t.Quantized} | {t.QuantizedMedianMs.ToString("F0", c)} ms | {string.Join(", ", t.QuantizedMs.Select(v => v.ToString("F0", c)))} |");
        md.AppendLine();
        md.AppendLine($"**Ratio S-DFP8 / FP32 = {t.Ratio.ToString("F2", c)}.** The quantisation is simulated with FP32 tensor ops (fake quantisation around FP32 GEMMs), " +
                      "so it costs time on a CPU; the integer arithmetic it models is what would save time and energy on hardware.");
    }

    /// <summary>The Seeds section: final accuracy per configuration and seed, then the paired differences and what they say.</summary>
    private static void AppendSeeds(StringBuilder md, SeedSummary summary, string? image)
    {
        md.AppendLine("## Seeds");
        md.AppendLine();
        md.AppendLine($"Final test accuracy (after the last epoch) of each configuration with seeds {string.Join(", ", summary.Seeds)}; mean ± sample standard deviation " +
                      "(n − 1 in the denominator) over the seeds in which the configuration completed.");
        md.AppendLine();
        md.AppendLine("| Config | Seeds | " + string.Join(" | ", summary.Seeds.Select(s => $"Seed {s}")) + " | Mean ± SD | n |");
        md.AppendLine("|---|---|" + string.Concat(summary.Seeds.Select(_ => "---|")) + "---|---|");
        foreach (var config in summary.Configs)
        {
            var cells = summary.Seeds.Select(seed => config.FinalTestAccuracy.FirstOrDefault(v => v.Seed == seed) is { } v
                ? SeedSummary.Pp(v.Value) + " %"
                : config.NotCounted.FirstOrDefault(n => n.Seed == seed) is { Status: not SeedSummary.NotInInputs } why ? why.Status : "–");
            md.AppendLine($"| {config.Config} | {(config.FinalTestAccuracy.Count == 0 ? "–" : string.Join(", ", config.FinalTestAccuracy.Select(v => v.Seed)))} | " +
                          $"{string.Join(" | ", cells)} | {MeanSd(config.Spread)} | {config.Spread.N} |");
        }
        md.AppendLine();
        if (image is not null)
        {
            md.AppendLine("Mean ± SD (black) and each seed's run (circles), for the configurations with at least 2 seeds:");
            md.AppendLine();
            md.AppendLine($"![Final test accuracy per seed]({image})");
            md.AppendLine();
        }
        md.AppendLine("**Paired differences.** Within a seed, every configuration starts from the same initial weights and sees the training data in the same order, " +
                      "so the difference between two configurations of one seed removes most of what the seed changes. Per seed, in percentage points:");
        md.AppendLine();
        if (summary.Paired.Count > 0)
        {
            md.AppendLine("| Difference | " + string.Join(" | ", summary.Seeds.Select(s => $"Seed {s}")) + " | Mean ± SD | n | Higher in |");
            md.AppendLine("|---|" + string.Concat(summary.Seeds.Select(_ => "---|")) + "---|---|---|");
            foreach (var pair in summary.Paired)
            {
                var cells = summary.Seeds.Select(seed => pair.Differences.FirstOrDefault(d => d.Seed == seed) is { } d ? SeedSummary.Signed(d.Value) : "–");
                md.AppendLine($"| {pair.Config} − {pair.Baseline} | {string.Join(" | ", cells)} | {SeedSummary.Signed(pair.Spread.Mean)} ± {SeedSummary.Pp(pair.Spread.StandardDeviation ?? double.NaN)} pp | " +
                              $"{pair.Spread.N} | {pair.Higher} of {pair.Spread.N} |");
            }
            md.AppendLine();
        }
        else
        {
            md.AppendLine("None: no two configurations to compare were completed in every seed.");
            md.AppendLine();
        }
        AppendList(md, summary.Statements);
        if (summary.LeftOut.Count > 0)
        {
            md.AppendLine("Left out of the paired differences, as they are not completed in every seed:");
            md.AppendLine();
            AppendList(md, summary.LeftOut);
        }
    }

    private static void AppendList(StringBuilder md, IReadOnlyList<string> items)
    {
        foreach (var item in items)
            md.AppendLine($"- {item}");
        if (items.Count > 0)
            md.AppendLine();
    }

    private static string SeedList(IReadOnlyList<ExperimentReport> bySeed) => string.Join(", ", bySeed.Select(s => s.Seed));

    private static string MeanSd(Spread spread) => spread switch
    {
        { N: 0 } => "–",
        { StandardDeviation: { } sd } => $"{SeedSummary.Pp(spread.Mean)} ± {SeedSummary.Pp(sd)} %",
        _ => $"{SeedSummary.Pp(spread.Mean)} %",
    };

    private static void AppendFlushTable(StringBuilder md, IReadOnlyDictionary<string, IReadOnlyList<TensorStatistics>> telemetry)
    {
        var runs = telemetry.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var layers = telemetry.Values.SelectMany(v => v).Where(s => s.Role == TensorRole.Error).Select(s => s.Layer).Distinct().OrderBy(LayerOrder).ToList();
        if (layers.Count == 0)
            return;
        md.AppendLine("Mean fraction of non-zero errors (G) flushed to zero per layer, over the sampled steps:");
        md.AppendLine();
        md.AppendLine("| Layer | " + string.Join(" | ", runs) + " |");
        md.AppendLine("|---|" + string.Concat(runs.Select(_ => "---|")));
        foreach (var layer in layers)
        {
            var cells = runs.Select(run => Percent(telemetry[run].Where(s => s.Layer == layer && s.Role == TensorRole.Error && s.HasFullStatistics)
                .Select(s => s.FlushedToZeroFraction).DefaultIfEmpty(double.NaN).Average()));
            md.AppendLine($"| {layer} | {string.Join(" | ", cells)} |");
        }
        md.AppendLine();
    }

    /// <summary>Orders layer names by depth: layer1.0.conv1 before layer1.0.conv2 before layer1.1.conv1 ..., numbers compared as numbers.</summary>
    internal static string LayerOrder(string layer) =>
        string.Join('.', layer.Split('.').Select(part => int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n.ToString("D4", CultureInfo.InvariantCulture) : part));

    private static string Percent(double fraction) =>
        double.IsNaN(fraction) ? "–" : (100 * fraction).ToString(fraction < 0.001 ? "F4" : "F2", CultureInfo.InvariantCulture) + " %";

    private static string Capitalise(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
