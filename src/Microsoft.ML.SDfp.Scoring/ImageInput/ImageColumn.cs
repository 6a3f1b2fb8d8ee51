using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.SDfp.ImageInput;

/// <summary>
/// The one place that reads the image columns of a schema: how the image column carries its images, and which text
/// column names each row's image file for error messages.
/// </summary>
internal static class ImageColumn
{
    /// <summary>The path column used when none is stated, if the input has a text column of this name.</summary>
    public const string DefaultPathColumnName = "ImagePath";

    /// <summary>
    /// The path column a trainer records: the stated name, or <see cref="DefaultPathColumnName"/> when
    /// <paramref name="schema"/> has such a text column, else null.
    /// </summary>
    public static string? ResolvePathColumnName(DataViewSchema schema, string? stated) =>
        stated ?? (FindPath(schema, DefaultPathColumnName) is not null ? DefaultPathColumnName : null);

    /// <summary>
    /// The text column that names each row's image: <paramref name="name"/>, or <see cref="DefaultPathColumnName"/>
    /// when null. Null when the schema has no such text column (then messages name rows by index).
    /// </summary>
    public static DataViewSchema.Column? FindPath(DataViewSchema schema, string? name) =>
        schema.GetColumnOrNull(name ?? DefaultPathColumnName) is { Type: TextDataViewType } column ? column : null;

    /// <summary>
    /// Decides how <paramref name="columnName"/> carries images, or throws an error naming the column and its type.
    /// </summary>
    public static ImageColumnKind ResolveKind(DataViewSchema schema, string columnName, (int Channels, int Height, int Width)? statedShape,
        out ImageInputShape vectorShape)
    {
        vectorShape = default;
        DataViewSchema.Column column = schema.GetColumnOrNull(columnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Image column '{columnName}' not found in the input (columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'"))}).");
        DataViewType type = column.Type;
        if (type is ImageDataViewType)
        {
            return ImageColumnKind.MLImage;
        }

        if (type is VectorDataViewType { ItemType: var item } vector)
        {
            if (item == NumberDataViewType.Byte)
            {
                return ImageColumnKind.EncodedBytes;
            }

            if (item == NumberDataViewType.Single && vector.IsKnownSize)
            {
                vectorShape = InferVectorShape(columnName, vector.Size, statedShape);
                return ImageColumnKind.FloatVector;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(schema),
            $"Image column '{columnName}' has type {type}; expected encoded image bytes (Vector<Byte>, from LoadRawImageBytes), an image (from LoadImages), or a known-size Vector<Single> of pixels (from ExtractPixels).");
    }

    private static ImageInputShape InferVectorShape(string columnName, int size, (int Channels, int Height, int Width)? stated)
    {
        if (stated is { } s)
        {
            if (s.Channels * s.Height * s.Width != size)
            {
                throw new ArgumentOutOfRangeException(nameof(stated),
                    $"FeatureVectorShape {s.Channels}×{s.Height}×{s.Width} = {s.Channels * s.Height * s.Width} does not match the {size} values of column '{columnName}'.");
            }

            return new ImageInputShape(s.Channels, s.Height, s.Width);
        }

        foreach (int channels in new[] { 3, 1 })
        {
            if (size % channels == 0)
            {
                int side = (int)Math.Round(Math.Sqrt(size / channels));
                if (side * side * channels == size)
                {
                    return new ImageInputShape(channels, side, side);
                }
            }
        }

        throw new ArgumentOutOfRangeException(nameof(stated),
            $"Cannot infer the image shape of float column '{columnName}' ({size} values is not c·s·s for c = 1 or 3); set Options.FeatureVectorShape.");
    }
}
