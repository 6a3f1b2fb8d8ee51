using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Scoring speed and footprint of the three routes (TorchSharp S-DFP, ONNX Runtime int8, ONNX Runtime FP32), each in a
/// fresh process so that peak RSS and the time to the first prediction are its own. Rounds run every route once, in
/// turn, so that load from other processes hits all of them alike; the table gives min / median / max over rounds.
/// </summary>
internal static class ScoringBenchmark
{
    private const string Usage = """
        usage: Microsoft.ML.SDfp.Benchmarks scoring --model model.zip --images DIR [options]
          --model P       a model.zip saved by the trainer
          --images D      image folder root/<label>/*.png
          --rows N        rows for the PredictionEngine and Transform measurements (default 10000)
          --repeats N     rounds; every round runs every route in a fresh process (default 3)
          --routes a,b    subset of torchsharp, ort-int8, ort-fp32 (default all)
        """;

    private static readonly string[] Metrics = ["load_s", "first_s", "pe_p50_ms", "pe_p99_ms", "transform_img_s", "peak_rss_mb"];

    public static int Run(string[] args)
    {
        string? model = null, images = null;
        int rows = 10_000, repeats = 3;
        string[] routes = ["torchsharp", "ort-int8", "ort-fp32"];
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--images": images = args[++i]; break;
                case "--rows": rows = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--routes": routes = args[++i].Split(','); break;
                default: Console.Error.WriteLine(Usage); return 2;
            }
        }

        if (model is null || images is null)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        return Parent(model, images, rows, repeats, routes);
    }

    private static int Parent(string model, string images, int rows, int repeats, string[] routes)
    {
        string loadBefore = File.ReadAllText("/proc/loadavg").Trim();
        var results = routes.ToDictionary(r => r, _ => new List<double[]>());
        for (int round = 0; round < repeats; round++)
        {
            foreach (string route in routes)
            {
                double[] values = RunChild(model, images, rows, route);
                results[route].Add(values);
                Console.Error.WriteLine($"round {round + 1} {route}: " + string.Join(", ", Metrics.Select((m, i) => $"{m} {values[i]:G4}")));
            }
        }

        Console.WriteLine($"load average before: {loadBefore}; after: {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine($"{rows} rows, {repeats} rounds (fresh process per route and round); min / median / max");
        Console.WriteLine("| route | " + string.Join(" | ", Metrics) + " |");
        Console.WriteLine("| --- |" + string.Concat(Enumerable.Repeat(" --- |", Metrics.Length)));
        foreach (string route in routes)
        {
            var cells = Metrics.Select((_, m) =>
            {
                double[] v = results[route].Select(r => r[m]).Order().ToArray();
                return $"{v[0]:G3} / {v[v.Length / 2]:G3} / {v[^1]:G3}";
            });
            Console.WriteLine($"| {route} | " + string.Join(" | ", cells) + " |");
        }

        return 0;
    }

    /// <summary>The measuring process (test/Microsoft.ML.SDfp.Benchmarks.ScoringRunner) with <paramref name="args"/>.</summary>
    public static ProcessStartInfo Runner(params string[] args)
    {
        string dll = typeof(ScoringBenchmark).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ScoringRunner").Value!;
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"The scoring runner is not built at {dll}; build test/Microsoft.ML.SDfp.Benchmarks first.", dll);
        }

        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        return start;
    }

    private static double[] RunChild(string model, string images, int rows, string route)
    {
        ProcessStartInfo start = Runner("measure", route, model, images, rows.ToString(CultureInfo.InvariantCulture));
        start.RedirectStandardOutput = true;
        using Process child = Process.Start(start)!;
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string? line = output.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (child.ExitCode != 0 || line is null)
        {
            throw new InvalidOperationException($"The {route} child process failed (exit {child.ExitCode}): {output}");
        }

        return line["RESULT ".Length..].Split(' ').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
    }
}
