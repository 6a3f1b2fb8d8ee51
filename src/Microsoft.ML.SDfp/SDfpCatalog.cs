using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Trainers;
using Microsoft.ML.SDfp.Training.Models;

namespace Microsoft.ML;

/// <summary>Catalog entry points of the S-DFP image classifier.</summary>
public static class SDfpCatalog
{
    /// <summary>
    /// Trains a ResNet image classifier in shifted dynamic fixed point (S-DFP8 by default) on a key-typed label and an
    /// image column: encoded bytes (<c>LoadRawImageBytes</c>), images (<c>LoadImages</c>) or a float pixel vector
    /// (<c>ExtractPixels</c>). Unset settings take the defaults documented on <see cref="SDfpImageClassificationTrainer.Options"/>.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="labelColumnName">Key-typed label column (use MapValueToKey). Default "Label".</param>
    /// <param name="featureColumnName">Image column. Default "Features".</param>
    /// <param name="scoreColumnName">Output probabilities column. Default "Score".</param>
    /// <param name="predictedLabelColumnName">Output predicted key column. Default "PredictedLabel".</param>
    /// <param name="architecture">Network. Default ResNet-20.</param>
    /// <param name="numberFormat">Number format of the body. Default S-DFP.</param>
    /// <param name="epochs">Passes over the training data. Default 10.</param>
    /// <param name="imageSize">Model input width and height in pixels. Default 32.</param>
    /// <param name="validationSet">Validation data with the training data's schema; null holds out 10% of the training rows.</param>
    public static SDfpImageClassificationTrainer SDfpImageClassification(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label",
        string featureColumnName = "Features",
        string scoreColumnName = "Score",
        string predictedLabelColumnName = "PredictedLabel",
        ResNetArchitecture architecture = ResNetArchitecture.ResNet20,
        SDfpNumberFormat numberFormat = SDfpNumberFormat.SDfp,
        int epochs = 10,
        int imageSize = 32,
        IDataView? validationSet = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new SDfpImageClassificationTrainer(((IInternalCatalog)catalog).Environment, new SDfpImageClassificationTrainer.Options
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            ScoreColumnName = scoreColumnName,
            PredictedLabelColumnName = predictedLabelColumnName,
            Architecture = architecture,
            NumberFormat = numberFormat,
            Epochs = epochs,
            ImageWidth = imageSize,
            ImageHeight = imageSize,
            ValidationSet = validationSet,
        });
    }

    /// <summary>Trains an S-DFP ResNet image classifier with every setting given by <paramref name="options"/>.</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">Settings; see <see cref="SDfpImageClassificationTrainer.Options"/> for the defaults.</param>
    public static SDfpImageClassificationTrainer SDfpImageClassification(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        SDfpImageClassificationTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new SDfpImageClassificationTrainer(((IInternalCatalog)catalog).Environment, options);
    }
}
