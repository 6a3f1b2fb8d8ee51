using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Training;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Chooses the hand-picked S-DFP shift of each role (W, A, G) from a short telemetry probe: the experiment's ResNet, from the
/// same initial weights, trained for a few steps with S-DFP(n, s) on every role, once for each candidate shift s. Per
/// role, the largest shift whose mean saturated fraction stays within a budget is picked.
/// </summary>
/// <remarks>
/// The rule follows what S-DFP trades: a larger shift gives small values more resolution (fewer flushed to zero) and
/// clamps the largest ones. Tensors with heavy tails (errors) can take a large shift while almost nothing saturates;
/// near-Gaussian ones (weights, activations) saturate quickly. The budget bounds the clamping. Least-MSE shift selection
/// is what the auto-shift mode does per step; this fixed per-role pick is the "hand-tuned" S-DFP the paper compares.
/// The probe sees training data only, no test data and no accuracy.
/// </remarks>
internal static class ShiftProbe
{
    public const int MaxShift = 4;

    public static ShiftProbeResult Run(int bits, string model, ImageDataset train, TrainingOptions baseOptions, int steps, double saturationBudget, long seed, Action<string> log)
    {
        var images = (int)Math.Min(train.Count, (long)steps * baseOptions.BatchSize);
        using var slice = train.Slice(0, images);
        var candidates = new List<ShiftCandidate>();
        for (var shift = 0; shift <= MaxShift; shift++)
        {
            TorchSharp.torch.manual_seed(seed);
            using var network = ExperimentModel.Create(model, QuantizationPolicy.Body(QuantizationConfig.Uniform(DfpFormat.SDfp(bits, shift)) with { Seed = seed }));
            var telemetry = new QuantizationTelemetry { SampleEvery = 1 };
            network.Telemetry = telemetry;
            // Constant rate: the probe should see tensors as they are early in a real run, not a decayed miniature run.
            var trainer = new ImageClassifierTrainer(network, baseOptions with { Epochs = 1, Schedule = LearningRateSchedule.Constant, WarmupEpochs = 0, EarlyStoppingPatience = null });
            string? failure = null;
            try
            {
                trainer.Fit(slice);
            }
            catch (TrainingDivergedException e)
            {
                failure = e.Message;
            }
            var records = telemetry.Records.Where(r => r.HasFullStatistics).ToList();
            var roles = new[] { TensorRole.Weight, TensorRole.Activation, TensorRole.Error }.Select(role =>
            {
                var ofRole = records.Where(r => r.Role == role).ToList();
                return new RoleStatistics(role.ToString(),
                    ofRole.Select(r => r.SaturatedFraction).DefaultIfEmpty(double.NaN).Average(),
                    ofRole.Select(r => r.FlushedToZeroFraction).DefaultIfEmpty(double.NaN).Average(),
                    ofRole.Where(r => double.IsFinite(r.SqnrDb)).Select(r => r.SqnrDb).DefaultIfEmpty(double.NaN).Average(),
                    ofRole.Count);
            }).ToList();
            candidates.Add(new ShiftCandidate(shift, roles, failure));
            log($"  probe {bits}-bit s={shift}: " + string.Join("; ", roles.Select(r => $"{r.Role} sat {100 * r.MeanSaturatedFraction:F3}% flush {100 * r.MeanFlushedToZeroFraction:F2}% SQNR {r.MeanSqnrDb:F1} dB"))
                + (failure is null ? "" : " (diverged)"));
        }

        var chosen = new Dictionary<string, int>();
        foreach (var role in new[] { "Weight", "Activation", "Error" })
        {
            chosen[role] = candidates
                .Where(c => c.Failure is null && c.Roles.Single(r => r.Role == role).MeanSaturatedFraction <= saturationBudget)
                .Select(c => c.Shift).DefaultIfEmpty(0).Max();
        }
        log($"  picked {bits}-bit shifts (largest with mean saturation <= {100 * saturationBudget:G3}%): W s={chosen["Weight"]}, A s={chosen["Activation"]}, G s={chosen["Error"]}");
        return new ShiftProbeResult(bits, (int)Math.Ceiling(images / (double)baseOptions.BatchSize), saturationBudget, candidates, chosen);
    }
}
