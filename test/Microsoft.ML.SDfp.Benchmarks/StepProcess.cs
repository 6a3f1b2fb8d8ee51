using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// One measuring process of the <c>step</c> benchmark: the FP32 ResNet-20 and the quantised ones train side by side on
/// the same batches, one step of each per round, the order rotating every round, and every step is split into phases.
/// Prints one JSON line (prefixed <see cref="Marker"/>) for <see cref="StepBenchmark"/> to collect.
/// </summary>
internal static class StepProcess
{
    public const string Marker = "STEP-RESULT ";

    /// <summary>Distinct batches cycled through, so that exponents move between steps as in training.</summary>
    private const int Batches = 8;

    public static int Run(StepOptions options, int processIndex)
    {
        TorchSharpRuntime.EnsureLoaded();
        set_num_threads(options.Threads);
        if (options.RetainMemory)
            NativeMemoryTuning.RetainFreedMemory();
        QuantizationCounters.Enabled = true;

        using var data = FashionMnist.LoadTrain(options.DataDirectory, options.BatchSize * Batches);
        var arms = options.Arms().Select(a => new Arm(a.Name, a.Config, a.Variant, options.Seed)).ToList();
        try
        {
            var records = new List<StepRecord>();
            for (var round = -options.Warmup; round < options.Rounds; round++)
            {
                var batch = ((round % Batches) + Batches) % Batches;
                using var scope = NewDisposeScope();
                var images = data.Images.narrow(0, batch * options.BatchSize, options.BatchSize);
                var labels = data.Labels.narrow(0, batch * options.BatchSize, options.BatchSize);
                for (var k = 0; k < arms.Count; k++)
                {
                    // Rotate who goes first, so that load that comes and goes, and cache state, favour no arm.
                    var arm = arms[(k + round + options.Warmup) % arms.Count];
                    var record = arm.Step(images, labels, options.EndStep, round);
                    if (round >= 0)
                        records.Add(record);
                }
            }
            var result = new StepProcessResult(processIndex, ResourceUsage.ResidentMegabytes(), records);
            Console.WriteLine(Marker + JsonSerializer.Serialize(result));
            return 0;
        }
        finally
        {
            foreach (var arm in arms)
                arm.Dispose();
        }
    }

    /// <summary>
    /// Burns one core until killed: the competing process of <c>--contend</c>. It also stops when the benchmark that
    /// started it is gone, so an interrupted benchmark leaves nothing running.
    /// </summary>
    public static int Spin(int parent)
    {
        var x = 1.0;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            for (var i = 0; i < 1_000_000; i++)
                x = Math.Sqrt(x + 1.0);
            if (clock.ElapsedMilliseconds < 500)
                continue;
            clock.Restart();
            try
            {
                using var process = Process.GetProcessById(parent);
                if (process.HasExited)
                    return 0;
            }
            catch (ArgumentException)
            {
                return 0;
            }
        }
    }

    private sealed class Arm : IDisposable
    {
        private readonly ResNetModel _model;
        private readonly optim.Optimizer _optimizer;
        private readonly string? _variant;

        public Arm(string name, string config, string? variant, long seed)
        {
            Name = name;
            _variant = variant;
            var policy = StepOptions.Policy(config, seed);
            torch.manual_seed(seed);
            _model = ResNetFactory.Create(new ResNetOptions
            {
                Architecture = ResNetArchitecture.ResNet20, InputChannels = 1, NumClasses = 10, Quantization = policy,
            });
            _model.train();
            _optimizer = optim.SGD(_model.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
        }

        public string Name { get; }

        public StepRecord Step(Tensor images, Tensor labels, bool endStep, int round)
        {
            // Both switches are per thread, and libtorch runs a CPU backward on the calling thread.
            TensorQuantizer.GuessExponent = _variant != "two-pass";
            FusedQuantization.ThreadOverride = _variant == "share" ? 2 : 0;
            var faults0 = ResourceUsage.Read();
            var counters0 = QuantizationCounters.Read();
            var managed0 = GC.GetAllocatedBytesForCurrentThread();
            var t0 = Stopwatch.GetTimestamp();

            using var scope = NewDisposeScope();
            _optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(_model.call(images), labels);
            var t1 = Stopwatch.GetTimestamp();
            loss.backward();
            var t2 = Stopwatch.GetTimestamp();
            _optimizer.step();
            _ = loss.item<float>();
            var t3 = Stopwatch.GetTimestamp();
            scope.Dispose();
            if (endStep)
                QuantizedBackward.EndStep();
            var t4 = Stopwatch.GetTimestamp();

            var managed = GC.GetAllocatedBytesForCurrentThread() - managed0;
            var counters = QuantizationCounters.Read() - counters0;
            var usage = ResourceUsage.Read() - faults0;
            TensorQuantizer.GuessExponent = true;
            FusedQuantization.ThreadOverride = 0;
            return new StepRecord(Name, round, Ms(t0, t4), Ms(t0, t1), Ms(t1, t2), Ms(t2, t3), Ms(t3, t4),
                counters.Milliseconds[(int)TensorRole.Weight], counters.Milliseconds[(int)TensorRole.Activation],
                counters.Milliseconds[(int)TensorRole.Error], counters.Passes, counters.Misses,
                managed / 1024.0, usage.MinorFaults, usage.CpuMilliseconds);
        }

        private static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

        public void Dispose()
        {
            _optimizer.Dispose();
            _model.Dispose();
        }
    }
}

/// <summary>One timed step of one arm, split into phases; times in milliseconds.</summary>
internal sealed record StepRecord(string Arm, int Round, double Total, double Forward, double Backward, double Optimizer,
    double EndStep, double Weight, double Activation, double Error, long Passes, long Misses, double ManagedKb,
    long MinorFaults, double CpuMs);

/// <summary>All steps of one measuring process.</summary>
internal sealed record StepProcessResult(int Process, double ResidentMb, List<StepRecord> Records);
