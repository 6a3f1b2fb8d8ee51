using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Runtime;
using ScottPlot;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// The PNG plots of the Fashion-MNIST report (ScottPlot 5), each written atomically. The accuracy curves and the telemetry
/// plots are those of the report's <see cref="ExperimentReport.Seed"/> (the plotted one, in a report of several seeds);
/// the seeds plot compares the final accuracies of all seeds.
/// </summary>
internal static class ResultsPlots
{
    private const int Width = 900;
    private const int Height = 520;
    private static readonly TensorRole[] Roles = { TensorRole.Weight, TensorRole.Activation, TensorRole.Error };

    /// <summary>File names (relative to the results folder) of the plots that were drawn.</summary>
    internal sealed record Images(string? Accuracy, string? Flush, IReadOnlyList<(string Run, IReadOnlyList<(TensorRole Role, string Exponent, string Saturation)> Roles)> Detail)
    {
        /// <summary>The final accuracies across seeds, when the report has several.</summary>
        public string? Seeds { get; init; }
    }

    public static Images Draw(string folder, ExperimentReport report, IReadOnlyDictionary<string, IReadOnlyList<TensorStatistics>> telemetry, IReadOnlyList<string> detailRuns)
    {
        string? accuracy = null;
        if (report.Runs.Any(r => r.TestAccuracyPerEpoch.Count > 0))
        {
            accuracy = "fashion-mnist-accuracy.png";
            var plot = new Plot();
            foreach (var run in report.Runs.Where(r => r.TestAccuracyPerEpoch.Count > 0))
            {
                var xs = Enumerable.Range(1, run.TestAccuracyPerEpoch.Count).Select(e => (double)e).ToArray();
                var ys = run.TestAccuracyPerEpoch.Select(a => 100 * a).ToArray();
                var line = plot.Add.Scatter(xs, ys);
                line.LegendText = run.Config;
                line.LineWidth = 2;
                line.MarkerSize = 6;
            }
            plot.Title($"Fashion-MNIST {ExperimentModel.DisplayName(report.Model)}: test accuracy ({report.Mode} mode, seed {report.Seed})");
            plot.XLabel("epoch");
            plot.YLabel("test accuracy (%)");
            plot.ShowLegend(Edge.Right);
            Save(plot, folder, accuracy);
        }

        string? flush = null;
        if (telemetry.Count > 0)
        {
            flush = "fashion-mnist-flush-to-zero.png";
            var plot = new Plot();
            foreach (var (run, records) in telemetry.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var points = records.Where(s => s.Role == TensorRole.Error && s.HasFullStatistics)
                    .GroupBy(s => s.Step).OrderBy(g => g.Key)
                    .Select(g => (Step: (double)g.Key, Fraction: 100 * g.Average(s => s.FlushedToZeroFraction))).ToList();
                if (points.Count == 0)
                    continue;
                var line = plot.Add.Scatter(points.Select(p => p.Step).ToArray(), points.Select(p => p.Fraction).ToArray());
                line.LegendText = run;
                line.LineWidth = 2;
                line.MarkerSize = 4;
            }
            plot.Title("Errors (G) flushed to zero, mean over quantised layers");
            plot.XLabel("training step");
            plot.YLabel("non-zero errors quantised to 0 (%)");
            plot.ShowLegend(Edge.Right);
            Save(plot, folder, flush);
        }

        var detail = new List<(string, IReadOnlyList<(TensorRole, string, string)>)>();
        foreach (var run in detailRuns)
        {
            if (!telemetry.TryGetValue(run, out var records) || records.Count == 0)
                continue;
            var roles = new List<(TensorRole, string, string)>();
            foreach (var role in Roles)
            {
                var exponent = $"fashion-mnist-{run}-exponent-{role.ToString().ToLowerInvariant()}.png";
                var saturation = $"fashion-mnist-{run}-saturation-{role.ToString().ToLowerInvariant()}.png";
                PerLayer(folder, exponent, records, role, s => true, s => s.Exponent, $"{run}: {role} exponent per layer (e − s)", "exponent");
                PerLayer(folder, saturation, records, role, s => s.HasFullStatistics, s => 100 * s.SaturatedFraction, $"{run}: {role} saturated per layer", "saturated elements (%)");
                roles.Add((role, exponent, saturation));
            }
            detail.Add((run, roles));
        }
        return new Images(accuracy, flush, detail) { Seeds = report.Seeds is { } summary ? DrawSeeds(folder, report, summary) : null };
    }

    /// <summary>
    /// Final test accuracy per configuration: mean ± SD as a marker with error bars, and each seed's run as a point of the
    /// seed's colour beside it. Configurations with fewer than 2 completed seeds have no spread to show and are left out.
    /// </summary>
    private static string? DrawSeeds(string folder, ExperimentReport report, SeedSummary summary)
    {
        var configs = summary.Configs.Where(c => c.Spread.N >= 2).ToList();
        if (configs.Count == 0)
            return null;
        const string file = "fashion-mnist-seeds.png";
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (var s = 0; s < summary.Seeds.Count; s++)
        {
            var seed = summary.Seeds[s];
            // Each seed a little to the right of the mean, in seed order, so that equal accuracies do not hide each other.
            var offset = 0.1 + 0.25 * s / Math.Max(1, summary.Seeds.Count - 1);
            var points = configs.SelectMany((c, i) => c.FinalTestAccuracy.Where(v => v.Seed == seed).Select(v => (X: i + offset, Y: 100 * v.Value))).ToList();
            if (points.Count == 0)
                continue;
            var markers = plot.Add.Markers(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray(), MarkerShape.OpenCircle, 8, palette.GetColor(s));
            markers.LegendText = $"seed {seed}";
        }
        var xs = Enumerable.Range(0, configs.Count).Select(i => (double)i).ToArray();
        var means = configs.Select(c => 100 * c.Spread.Mean).ToArray();
        var bars = plot.Add.ErrorBar(xs, means, configs.Select(c => 100 * (c.Spread.StandardDeviation ?? 0)).ToArray());
        bars.Color = Colors.Black;
        bars.LineWidth = 2;
        var mean = plot.Add.Markers(xs, means, MarkerShape.FilledSquare, 9, Colors.Black);
        mean.LegendText = "mean ± SD";
        plot.Axes.Bottom.SetTicks(xs, configs.Select(c => c.Config).ToArray());
        plot.Axes.SetLimitsX(-0.5, configs.Count - 0.2);
        plot.Title($"Fashion-MNIST {ExperimentModel.DisplayName(report.Model)}: final test accuracy, seeds {string.Join(", ", summary.Seeds)}");
        plot.YLabel("final test accuracy (%)");
        plot.ShowLegend(Edge.Right);
        Save(plot, folder, file);
        return file;
    }

    private static void PerLayer(string folder, string file, IReadOnlyList<TensorStatistics> records, TensorRole role,
        Func<TensorStatistics, bool> filter, Func<TensorStatistics, double> value, string title, string yLabel)
    {
        var plot = new Plot();
        var layers = records.Where(s => s.Role == role).Select(s => s.Layer).Distinct().OrderBy(ResultsReport.LayerOrder).ToList();
        var colormap = new ScottPlot.Colormaps.Turbo();
        for (var i = 0; i < layers.Count; i++)
        {
            var points = records.Where(s => s.Role == role && s.Layer == layers[i] && filter(s)).OrderBy(s => s.Step).ToList();
            if (points.Count == 0)
                continue;
            var line = plot.Add.Scatter(points.Select(s => (double)s.Step).ToArray(), points.Select(value).ToArray());
            line.LegendText = layers[i];
            line.LineWidth = 1.5f;
            line.MarkerSize = 0;
            line.Color = colormap.GetColor(layers.Count == 1 ? 0 : i / (double)(layers.Count - 1));
        }
        plot.Title(title);
        plot.XLabel("training step");
        plot.YLabel(yLabel);
        plot.ShowLegend(Edge.Right);
        Save(plot, folder, file, width: Width + 200);
    }

    private static void Save(Plot plot, string folder, string file, int width = Width) =>
        AtomicFile.WriteVia(Path.Combine(folder, file), temp => plot.SavePng(temp, width, Height));
}
