using System.Diagnostics;
using System.Globalization;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>One route's measurements in this process: load, first prediction, PredictionEngine latencies, Transform throughput, peak RSS.</summary>
internal static class ScoringMeasurement
{
    public static int Run(string modelPath, string images, int rows, string route)
    {
        List<ImageRow> data = ScoringRoutes.Images(images, rows);
        var ml = new MLContext(seed: 1);
        var clock = Stopwatch.StartNew();
        ITransformer model = ScoringRoutes.Load(ml, modelPath, route);
        double load = clock.Elapsed.TotalSeconds;
        var engine = ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(model);
        engine.Predict(data[0]);
        double first = clock.Elapsed.TotalSeconds;

        var latencies = new double[data.Count];
        for (int i = 0; i < data.Count; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            engine.Predict(data[i]);
            latencies[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }

        Array.Sort(latencies);
        IDataView view = ml.Data.LoadFromEnumerable(data);
        clock.Restart();
        long scored = 0;
        foreach (ImagePrediction p in ml.Data.CreateEnumerable<ImagePrediction>(model.Transform(view), reuseRowObject: true))
        {
            scored += p.Score!.Length > 0 ? 1 : 0;
        }

        double throughput = scored / clock.Elapsed.TotalSeconds;
        double rssMb = PeakRssKb() / 1024.0;
        double[] values = [load, first, latencies[latencies.Length / 2], latencies[(int)(latencies.Length * 0.99)], throughput, rssMb];
        Console.WriteLine("RESULT " + string.Join(' ', values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
        return 0;
    }

    private static long PeakRssKb()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
