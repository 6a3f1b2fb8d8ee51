using Microsoft.ML.SDfp.Data;
using Microsoft.ML.SDfp.Models;
using Microsoft.ML.SDfp.Numerics;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Training;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Chooses the hand-picked S-DFP shift of each role (W, A, G) from a short telemetry probe: a few training steps of the
/// same ResNet with auto-shift n-bit formats, which pick, per tensor and step, the shift with the least quantisation
/// MSE. The probe's median choice per role becomes that role's fixed shift.
/// </summary>
/// <remarks>
/// Why this is a fair "hand pick": it looks only at the first steps of training (no test data, no accuracy), and fixes
/// one shift per role for the whole run, as a person tuning S-DFP would after looking at the tensor statistics.
/// </remarks>
internal static class ShiftProbe
{
    public static ShiftProbeResult Run(int bits, ImageDataset train, TrainingOptions baseOptions, int steps, long seed, Action<string> log)
    {
        var images = (int)Math.Min(train.Count, (long)steps * baseOptions.BatchSize);
        using var slice = train.Slice(0, images);
        TorchSharp.torch.manual_seed(seed);
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = ResNetArchitecture.ResNet20,
            InputChannels = 1,
            NumClasses = 10,
            Quantization = QuantizationPolicy.Body(QuantizationConfig.Uniform(DfpFormat.Auto(bits)) with { Seed = seed }),
        });
        var telemetry = new QuantizationTelemetry { SampleEvery = 1 };
        model.Telemetry = telemetry;
        // Constant rate: the probe should see tensors as they are early in a real run, not a decayed miniature run.
        var trainer = new ImageClassifierTrainer(model, baseOptions with { Epochs = 1, Schedule = LearningRateSchedule.Constant, WarmupEpochs = 0, EarlyStoppingPatience = null });
        trainer.Fit(slice);

        var roles = new List<RoleProbe>();
        foreach (var role in new[] { TensorRole.Weight, TensorRole.Activation, TensorRole.Error })
        {
            var records = telemetry.Records.Where(r => r.Role == role).ToList();
            if (records.Count == 0)
                throw new InvalidOperationException($"The auto-shift probe recorded no {role} statistics.");
            var shifts = records.Select(r => r.Shift).OrderBy(s => s).ToList();
            var median = shifts[(shifts.Count - 1) / 2];
            var full = records.Where(r => r.HasFullStatistics).ToList();
            var finiteSqnr = full.Where(r => double.IsFinite(r.SqnrDb)).Select(r => r.SqnrDb).DefaultIfEmpty(double.NaN);
            roles.Add(new RoleProbe(
                role.ToString(),
                median,
                shifts.GroupBy(s => s).OrderBy(g => g.Key).ToDictionary(g => g.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), g => g.Count()),
                full.Select(r => r.SaturatedFraction).DefaultIfEmpty(double.NaN).Average(),
                full.Select(r => r.FlushedToZeroFraction).DefaultIfEmpty(double.NaN).Average(),
                finiteSqnr.Average(),
                records.Count));
            log($"  probe {bits}-bit {role,-10}: auto shifts {string.Join(" ", roles[^1].AutoShiftHistogram.Select(kv => $"s={kv.Key}:{kv.Value}"))} -> s={median}");
        }
        return new ShiftProbeResult(bits, (int)Math.Ceiling(images / (double)baseOptions.BatchSize), roles);
    }
}
