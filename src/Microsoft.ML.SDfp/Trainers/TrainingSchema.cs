using Microsoft.ML.Data;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Trainers;

/// <summary>The trainer's checks of its input schemas, with errors that name the column and say what to add.</summary>
internal static class TrainingSchema
{
    /// <summary>The key-typed label column with at least two classes; <paramref name="data"/>, when given, tells an empty set apart.</summary>
    public static DataViewSchema.Column CheckLabel(DataViewSchema schema, string name, string what, IDataView? data = null)
    {
        DataViewSchema.Column column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Label column '{name}' not found in the {what} (columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'"))}).");
        if (column.Type is not KeyDataViewType key)
        {
            throw new ArgumentOutOfRangeException(nameof(schema), NotKeyMessage(name, column.Type));
        }

        if (key.Count < 2)
        {
            // MapValueToKey fitted on no rows still makes a key of one value, so an empty set would read "1 class".
            if (data is not null && IsEmpty(data))
            {
                throw new ArgumentOutOfRangeException(nameof(schema), $"The {what} is empty: it has no rows to train on.");
            }

            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Label column '{name}' has only {key.Count} class{(key.Count == 1 ? string.Empty : "es")}; image classification needs at least 2.");
        }

        return column;
    }

    private static bool IsEmpty(IDataView data)
    {
        using DataViewRowCursor cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        return !cursor.MoveNext();
    }

    /// <summary>What to do about a label column that is not a key.</summary>
    public static string NotKeyMessage(string name, DataViewType type) =>
        $"Label column '{name}' has type {type}, but SDfpImageClassification needs a key-typed label. Add mlContext.Transforms.Conversion.MapValueToKey(\"{name}\") before the trainer.";

    /// <summary>Refuses a validation set whose label keys or image column differ from the training data's.</summary>
    public static void CheckValidationSet(SDfpImageClassificationTrainer.Options options, DataViewSchema train, DataViewSchema validation, LabelNames trainLabels, ImageColumnKind kind, ImageInputShape vectorShape)
    {
        DataViewSchema.Column label;
        try
        {
            label = CheckLabel(validation, options.LabelColumnName, "validation set");
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new ArgumentOutOfRangeException(nameof(SDfpImageClassificationTrainer.Options.ValidationSet), $"The validation set's schema differs from the training data: {ex.Message}");
        }

        if (LabelNames.FromKeyColumn(label) is not { } names || !names.SameAs(trainLabels))
        {
            throw new ArgumentOutOfRangeException(nameof(SDfpImageClassificationTrainer.Options.ValidationSet),
                $"The validation set's schema differs from the training data: label column '{label.Name}' has type {label.Type} with different key values than the training data's {train[label.Name].Type}. Transform both with the same fitted MapValueToKey.");
        }

        if (validation.GetColumnOrNull(options.FeatureColumnName) is not { } feature)
        {
            throw new ArgumentOutOfRangeException(nameof(SDfpImageClassificationTrainer.Options.ValidationSet),
                $"The validation set's schema differs from the training data: image column '{options.FeatureColumnName}' is missing.");
        }

        ImageColumnKind validationKind;
        ImageInputShape validationShape;
        try
        {
            validationKind = ImageColumn.ResolveKind(validation, feature.Name, options.FeatureVectorShape, out validationShape);
        }
        catch (ArgumentOutOfRangeException)
        {
            validationKind = (ImageColumnKind)(-1);
            validationShape = default;
        }

        if (validationKind != kind || validationShape != vectorShape)
        {
            throw new ArgumentOutOfRangeException(nameof(SDfpImageClassificationTrainer.Options.ValidationSet),
                $"The validation set's schema differs from the training data: image column '{feature.Name}' has type {feature.Type} there but {train[feature.Name].Type} in the training data.");
        }
    }

}
