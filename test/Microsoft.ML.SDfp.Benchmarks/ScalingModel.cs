using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// The <c>scaling</c> command: measures local FP32 training-step times of ResNet-20, -50 and -152 and puts them into
/// a ring all-reduce model of data-parallel training on 2..64 nodes (docs/scaling.md explains the model).
/// </summary>
internal static class ScalingModel
{
    private static readonly int[] Nodes = [2, 4, 8, 16, 32, 64];
    private static readonly (string Name, double GigabitsPerSecond)[] Links = [("10 GbE", 10), ("25 GbE", 25), ("100 GbE", 100)];

    /// <summary>Latency per message of one ring hop over TCP/Ethernet (an assumption of the model, not measured).</summary>
    private const double HopLatencySeconds = 25e-6;

    public static int Run(string[] args)
    {
        var threads = Option(args, "--threads", 2);
        var rounds = Option(args, "--rounds", 3);
        var largeBatch = Option(args, "--large-batch", 4);
        // --step-ms a,b,c: skip the measurement and model these per-node step times (ms) of ResNet-20, -50, -152.
        var given = Array.IndexOf(args, "--step-ms") is var at && at >= 0 && at + 1 < args.Length
            ? args[at + 1].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture) / 1000).ToArray()
            : null;
        torch.set_num_threads(threads);
        Console.WriteLine($"# scaling: {threads} threads, {rounds} timed steps after 1 warm-up, load average {File.ReadAllText("/proc/loadavg").Trim()}");

        // Per-node batch of the model: 128 for ResNet-20 on 28×28, 32 for the ImageNet networks at 224×224, whose steps
        // are measured at --large-batch images and scaled linearly (a CPU step's time is close to linear in the batch).
        var models = new (string Name, ResNetArchitecture Architecture, int Channels, int Size, int Classes, int Measured, int PerNode)[]
        {
            ("ResNet-20", ResNetArchitecture.ResNet20, 1, 28, 10, 128, 128),
            ("ResNet-50", ResNetArchitecture.ResNet50, 3, 224, 1000, largeBatch, 32),
            ("ResNet-152", ResNetArchitecture.ResNet152, 3, 224, 1000, largeBatch, 32),
        };
        var rows = new List<(string Name, long Parameters, int Tensors, double StepSeconds, int PerNode)>();
        foreach (var (m, i) in models.Select((m, i) => (m, i)))
        {
            var (parameters, tensors, median) = Measure(m.Architecture, m.Channels, m.Size, m.Classes, given is null ? m.Measured : 0, rounds);
            var perNode = given?[i] ?? median * m.PerNode / m.Measured;
            rows.Add((m.Name, parameters, tensors, perNode, m.PerNode));
            Console.WriteLine(given is null
                ? $"{m.Name}: {parameters:N0} parameters in {tensors} tensors; FP32 step of {m.Measured} images {median * 1000:F0} ms (median) -> {perNode * 1000:F0} ms for {m.PerNode}"
                : $"{m.Name}: {parameters:N0} parameters in {tensors} tensors; given step of {m.PerNode} images {perNode * 1000:F0} ms");
        }

        Console.WriteLine();
        Console.WriteLine("| model | exchange | bytes per step | link | comm. at 2 / 8 / 64 nodes (ms) | efficiency at 64 nodes, node speed 1× / 100× / 1000× | stops scaling at, node speed 1× / 100× / 1000× |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var row in rows)
        {
            foreach (var (exchange, bytes) in new[] { ("FP32", 4.0 * row.Parameters), ("S-DFP8", 2.0 * row.Parameters + 4.0 * row.Tensors) })
            {
                foreach (var (link, gbps) in Links)
                {
                    var bandwidth = gbps * 1e9 / 8;
                    double Comm(int p) => 2.0 * (p - 1) * HopLatencySeconds + 2.0 * (p - 1) / p * bytes / bandwidth;
                    string Stops(double speed)
                    {
                        var compute = row.StepSeconds / speed;
                        var first = Enumerable.Range(2, 63).FirstOrDefault(p => Comm(p) >= compute);
                        return first == 0 ? "> 64" : first.ToString(CultureInfo.InvariantCulture);
                    }
                    string Efficiency(double speed) => (row.StepSeconds / speed / (row.StepSeconds / speed + Comm(64))).ToString("P0", CultureInfo.InvariantCulture);
                    Console.WriteLine($"| {row.Name} | {exchange} | {bytes / 1e6:F2} MB | {link} | {Comm(2) * 1000:F1} / {Comm(8) * 1000:F1} / {Comm(64) * 1000:F1} | {Efficiency(1)} / {Efficiency(100)} / {Efficiency(1000)} | {Stops(1)} / {Stops(100)} / {Stops(1000)} |");
                }
            }
        }
        return 0;
    }

    private static (long Parameters, int Tensors, double MedianSeconds) Measure(ResNetArchitecture architecture, int channels, int size, int classes, int batch, int rounds)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = architecture, InputChannels = channels, NumClasses = classes });
        using var optimizer = optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
        model.train();
        if (batch == 0)
            return (model.parameters().Sum(p => p.numel()), model.parameters().Count(), double.NaN);
        var images = randn([batch, channels, size, size]);
        var labels = randint(classes, [batch], dtype: ScalarType.Int64);
        var times = new List<double>();
        for (var i = 0; i <= rounds; i++)
        {
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(model.call(images), labels);
                loss.backward();
                optimizer.step();
                _ = loss.item<float>();
            }
            if (i > 0)
                times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        return (model.parameters().Sum(p => p.numel()), model.parameters().Count(), times[times.Count / 2]);
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
