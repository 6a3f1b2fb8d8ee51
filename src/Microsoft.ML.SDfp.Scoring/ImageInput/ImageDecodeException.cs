namespace Microsoft.ML.SDfp.ImageInput;

/// <summary>An image in the input could not be decoded; the message names the column, the row and, when known, the file.</summary>
public sealed class ImageDecodeException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public ImageDecodeException(string column, long row, string? path, string reason)
        : base($"Cannot decode the image{(path is null ? string.Empty : $" '{path}'")} in column '{column}'{(row >= 0 ? $" at row {row}" : string.Empty)}: {reason}")
    {
        Column = column;
        Row = row;
        Path = path;
    }

    /// <summary>Name of the image column.</summary>
    public string Column { get; }

    /// <summary>0-based row index in the data view, or -1 when there is none (a <c>PredictionEngine</c> call).</summary>
    public long Row { get; }

    /// <summary>Value of the path column for that row, when the input has one.</summary>
    public string? Path { get; }
}
