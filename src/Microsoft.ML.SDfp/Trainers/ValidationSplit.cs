using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Training.Data;
using TorchSharp;

namespace Microsoft.ML.SDfp.Trainers;

/// <summary>
/// The training and validation sets the trainer fits on: the given validation set, or a seeded random share of the
/// training rows (<see cref="SDfpImageClassificationTrainer.Options.ValidationSetFraction"/>).
/// </summary>
internal static class ValidationSplit
{
    /// <summary>Splits <paramref name="all"/>; <c>OwnsTrain</c> says whether the returned training set is a new tensor pair to dispose.</summary>
    public static (ImageDataset Train, ImageDataset? Validation, bool OwnsTrain) Split(SDfpImageClassificationTrainer.Options options, ImageDataset all, float[]? validationPixels, DecodedImages? validation,
        ImageInputShape shape, int classes, long seed, IChannel ch)
    {
        if (validationPixels is not null)
        {
            return (all, MakeDataset(validationPixels, validation!.Labels, validation.Count, shape, classes), false);
        }

        int held = (int)Math.Round(all.Count * options.ValidationSetFraction);
        if (held == 0 || all.Count - held < 2)
        {
            if (options.EarlyStoppingPatience is not null)
            {
                throw new InvalidOperationException("Early stopping needs validation data: set ValidationSet or a ValidationSetFraction that holds out at least one row.");
            }

            return (all, null, false);
        }

        // A seeded permutation, so the split is random across classes but repeatable.
        using var scope = torch.NewDisposeScope();
        using var generator = new torch.Generator(unchecked((ulong)seed + 7919));
        var order = torch.randperm(all.Count, generator: generator);
        var validationIndex = order.slice(0, 0, held, 1);
        var trainIndex = order.slice(0, held, all.Count, 1);
        var train = new ImageDataset(all.Images.index_select(0, trainIndex).MoveToOuterDisposeScope(),
            all.Labels.index_select(0, trainIndex).MoveToOuterDisposeScope(), classes);
        var heldOut = new ImageDataset(all.Images.index_select(0, validationIndex).MoveToOuterDisposeScope(),
            all.Labels.index_select(0, validationIndex).MoveToOuterDisposeScope(), classes);
        ch.Info($"Held out {held} of {all.Count} training rows for validation (ValidationSetFraction = {options.ValidationSetFraction}).");
        return (train, heldOut, true);
    }

    /// <summary>A data set over the first <paramref name="count"/> images and labels.</summary>
    public static ImageDataset MakeDataset(float[] pixels, long[] labels, int count, ImageInputShape shape, int classes) =>
        new(torch.tensor(pixels.AsSpan(0, count * shape.Size).ToArray(), new long[] { count, shape.Channels, shape.Height, shape.Width }),
            torch.tensor(labels.AsSpan(0, count).ToArray(), new long[] { count }), classes);
}
