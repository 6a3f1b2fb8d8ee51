namespace Microsoft.ML.SDfp.ImageInput;

/// <summary>How the image column carries its images; decided from the column type when the estimator is fitted.</summary>
internal enum ImageColumnKind
{
    /// <summary>Encoded file bytes (PNG, JPEG, ...), as <c>LoadRawImageBytes</c> produces: a vector of bytes.</summary>
    EncodedBytes = 0,

    /// <summary>A decoded <c>MLImage</c>, as <c>LoadImages</c> produces.</summary>
    MLImage = 1,

    /// <summary>A known-size float vector laid out channel-planar (CHW), as <c>ExtractPixels</c> produces.</summary>
    FloatVector = 2,
}
