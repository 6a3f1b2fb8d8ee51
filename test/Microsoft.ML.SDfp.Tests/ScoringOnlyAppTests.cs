using System.Diagnostics;
using System.Reflection;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>samples/OnnxScoring references only the scoring package: no TorchSharp or libtorch in its output, and it scores the trainer's zip.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class ScoringOnlyAppTests(TrainedModelFixture fixture)
{
    private static readonly string SampleDll = typeof(ScoringOnlyAppTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "OnnxScoringSample").Value!;

    [Fact]
    public void The_scoring_only_app_has_no_TorchSharp_or_libtorch_in_its_build_output()
    {
        string folder = Path.GetDirectoryName(SampleDll)!;
        Assert.True(File.Exists(SampleDll), $"{SampleDll} is not built");
        string[] files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f)).ToArray();
        Assert.Contains("Microsoft.ML.SDfp.Scoring.dll", files);
        Assert.Contains(files, f => f.Contains("onnxruntime", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(files, f => f.Contains("torch", StringComparison.OrdinalIgnoreCase) || f.Contains("Microsoft.ML.SDfp.dll", StringComparison.Ordinal));
        string deps = File.ReadAllText(Path.Combine(folder, "OnnxScoring.deps.json"));
        Assert.DoesNotContain("TorchSharp", deps, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("libtorch", deps, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(typeof(Microsoft.ML.SDfp.Scoring.SDfpImageClassifier).Assembly.GetReferencedAssemblies(),
            a => a.Name!.Contains("Torch", StringComparison.OrdinalIgnoreCase) || a.Name == "Microsoft.ML.SDfp");
    }

    [Fact]
    public async Task The_scoring_only_app_loads_the_trainer_zip_and_predicts_the_TorchSharp_labels()
    {
        string model = Path.Combine(fixture.Root, "scoring-only.zip");
        fixture.Ml.Model.Save(fixture.Model, fixture.TrainData.Schema, model);
        List<ImageRow> rows = fixture.TestRows.Take(8).ToList();
        var engine = fixture.Ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(fixture.Model);

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { SampleDll, model }.Concat(rows.Select(r => r.ImagePath)))
        {
            start.ArgumentList.Add(arg);
        }

        using Process app = Process.Start(start)!;
        Task<string> error = app.StandardError.ReadToEndAsync();
        string[] lines = (await app.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        await app.WaitForExitAsync();
        Assert.True(app.ExitCode == 0, await error);
        Assert.Equal(rows.Count, lines.Length);
        for (int i = 0; i < rows.Count; i++)
        {
            // "<path>: <label> (<probability>)"
            string predicted = lines[i][(rows[i].ImagePath.Length + 2)..lines[i].LastIndexOf(" (", StringComparison.Ordinal)];
            Assert.Equal(engine.Predict(rows[i]).PredictedLabel, predicted);
        }
    }
}
