using System.Buffers;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// Lends already-pinned bytes to an API that wants <see cref="ReadOnlyMemory{T}"/> (JpegLibrary), without copying
/// the frame. Valid only while the caller keeps the pointer fixed.
/// </summary>
internal sealed unsafe class PinnedMemory(byte* pointer, int length) : MemoryManager<byte>
{
    public override Span<byte> GetSpan() => new(pointer, length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
