using System.Diagnostics;
using Microsoft.ML;

// Predicts image files with a saved model on ONNX Runtime, without libtorch:
//   dotnet run --project samples/OnnxScoring -c Release -- model.zip image1.png [image2.jpg ...]
// The same code as samples/Scoring: the model names the scoring package as its loader, and with no training package
// deployed that loader scores on ONNX Runtime.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: OnnxScoring <model.zip> <image> [<image> ...]");
    return 2;
}

var ml = new MLContext();
var clock = Stopwatch.StartNew();
ITransformer model;
try
{
    model = ml.Model.Load(args[0], out _);
}
catch (Exception ex) when (ex is InvalidDataException or FileNotFoundException or NotSupportedException)
{
    Console.Error.WriteLine(ex.Message);
    return 1;
}

var engine = ml.Model.CreatePredictionEngine<ImageInput, ImagePrediction>(model);
foreach (string path in args.Skip(1))
{
    if (!File.Exists(path))
    {
        Console.Error.WriteLine($"{path}: file not found");
        continue;
    }

    ImagePrediction prediction = engine.Predict(new ImageInput { ImagePath = Path.GetFullPath(path) });
    Console.WriteLine($"{path}: {prediction.PredictedLabel} ({prediction.Score!.Max():P1})");
}

Console.Error.WriteLine($"{args.Length - 1} images in {clock.Elapsed.TotalSeconds:F2} s, load included");
return 0;

/// <summary>The model's input columns: the image path (the label is not needed to predict).</summary>
internal sealed class ImageInput
{
    public string ImagePath { get; set; } = string.Empty;

    public string Label { get; set; } = string.Empty;
}

/// <summary>The model's outputs: the predicted class name and the class probabilities.</summary>
internal sealed class ImagePrediction
{
    public string? PredictedLabel { get; set; }

    public float[]? Score { get; set; }
}
