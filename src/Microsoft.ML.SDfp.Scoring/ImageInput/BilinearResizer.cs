namespace Microsoft.ML.SDfp.ImageInput;

/// <summary>Resamples one image plane for float-vector inputs, which SkiaSharp cannot resize.</summary>
internal static class BilinearResizer
{
    /// <summary>Bilinear resampling with half-pixel centres (align_corners = false); a copy when sizes match.</summary>
    public static void Resize(ReadOnlySpan<float> src, int srcH, int srcW, Span<float> dst, int dstH, int dstW)
    {
        if (srcH == dstH && srcW == dstW)
        {
            src.CopyTo(dst);
            return;
        }

        float scaleY = (float)srcH / dstH, scaleX = (float)srcW / dstW;
        for (int y = 0; y < dstH; y++)
        {
            float sy = Math.Max(0, ((y + 0.5f) * scaleY) - 0.5f);
            int y0 = Math.Min((int)sy, srcH - 1), y1 = Math.Min(y0 + 1, srcH - 1);
            float wy = sy - y0;
            for (int x = 0; x < dstW; x++)
            {
                float sx = Math.Max(0, ((x + 0.5f) * scaleX) - 0.5f);
                int x0 = Math.Min((int)sx, srcW - 1), x1 = Math.Min(x0 + 1, srcW - 1);
                float wx = sx - x0;
                float top = (src[(y0 * srcW) + x0] * (1 - wx)) + (src[(y0 * srcW) + x1] * wx);
                float bottom = (src[(y1 * srcW) + x0] * (1 - wx)) + (src[(y1 * srcW) + x1] * wx);
                dst[(y * dstW) + x] = (top * (1 - wy)) + (bottom * wy);
            }
        }
    }
}
