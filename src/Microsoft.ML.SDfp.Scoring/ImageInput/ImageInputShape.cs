namespace Microsoft.ML.SDfp.ImageInput;

/// <summary>Channels, height and width of an image tensor (model input or float-vector column).</summary>
internal readonly record struct ImageInputShape(int Channels, int Height, int Width)
{
    public int Size => Channels * Height * Width;

    public override string ToString() => $"{Channels}×{Height}×{Width}";
}
