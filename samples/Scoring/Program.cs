using Microsoft.ML;

// Predicts image files with a saved model:
//   dotnet run --project samples/Scoring -c Release -- model.zip image1.png [image2.jpg ...]
// No registration call: ML.NET finds the S-DFP loader from the name stored in model.zip.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Scoring <model.zip> <image> [<image> ...]");
    return 2;
}

var ml = new MLContext();
ITransformer model;
try
{
    model = ml.Model.LoadChecked(args[0], out _);
}
catch (Exception ex) when (ex is InvalidDataException or FileNotFoundException)
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
