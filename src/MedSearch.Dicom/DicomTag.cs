namespace MedSearch.Dicom;

/// <summary>A data element tag: (group, element). Ordered as the standard orders a dataset: by group, then element.</summary>
public readonly struct DicomTag(ushort group, ushort element) : IEquatable<DicomTag>, IComparable<DicomTag>
{
    public ushort Group { get; } = group;
    public ushort Element { get; } = element;

    /// <summary>Group in the high 16 bits, element in the low: one comparable number per tag.</summary>
    public uint Value => ((uint)Group << 16) | Element;

    /// <summary>Odd groups are private (PS3.5 7.8); groups 1, 3, 5, 7 and 0xFFFF are reserved, not private.</summary>
    public bool IsPrivate => (Group & 1) == 1 && Group > 7 && Group != 0xFFFF;

    /// <summary>Group length elements (gggg,0000), UL in every group.</summary>
    public bool IsGroupLength => Element == 0;

    public bool Equals(DicomTag other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is DicomTag other && Equals(other);
    public override int GetHashCode() => (int)Value;
    public int CompareTo(DicomTag other) => Value.CompareTo(other.Value);
    public static bool operator ==(DicomTag left, DicomTag right) => left.Value == right.Value;
    public static bool operator !=(DicomTag left, DicomTag right) => left.Value != right.Value;
    public static bool operator <(DicomTag left, DicomTag right) => left.Value < right.Value;
    public static bool operator >(DicomTag left, DicomTag right) => left.Value > right.Value;
    public static bool operator <=(DicomTag left, DicomTag right) => left.Value <= right.Value;
    public static bool operator >=(DicomTag left, DicomTag right) => left.Value >= right.Value;

    public override string ToString() => $"({Group:X4},{Element:X4})";

    // Item and delimiters (PS3.5 7.5): they carry no VR in any transfer syntax.
    public static readonly DicomTag Item = new(0xFFFE, 0xE000);
    public static readonly DicomTag ItemDelimitationItem = new(0xFFFE, 0xE00D);
    public static readonly DicomTag SequenceDelimitationItem = new(0xFFFE, 0xE0DD);

    // File meta information (PS3.10 7.1).
    public static readonly DicomTag MediaStorageSopClassUid = new(0x0002, 0x0002);
    public static readonly DicomTag TransferSyntaxUid = new(0x0002, 0x0010);

    public static readonly DicomTag SpecificCharacterSet = new(0x0008, 0x0005);
    public static readonly DicomTag ImageType = new(0x0008, 0x0008);
    public static readonly DicomTag SopClassUid = new(0x0008, 0x0016);
    public static readonly DicomTag SopInstanceUid = new(0x0008, 0x0018);
    public static readonly DicomTag StudyDate = new(0x0008, 0x0020);
    public static readonly DicomTag SeriesDate = new(0x0008, 0x0021);
    public static readonly DicomTag AcquisitionDate = new(0x0008, 0x0022);
    public static readonly DicomTag ContentDate = new(0x0008, 0x0023);
    public static readonly DicomTag Modality = new(0x0008, 0x0060);
    public static readonly DicomTag Manufacturer = new(0x0008, 0x0070);

    public static readonly DicomTag PatientName = new(0x0010, 0x0010);
    public static readonly DicomTag PatientId = new(0x0010, 0x0020);
    public static readonly DicomTag PatientBirthDate = new(0x0010, 0x0030);
    public static readonly DicomTag PatientSex = new(0x0010, 0x0040);
    public static readonly DicomTag PatientAge = new(0x0010, 0x1010);

    public static readonly DicomTag BodyPartExamined = new(0x0018, 0x0015);
    public static readonly DicomTag ViewPosition = new(0x0018, 0x5101);

    public static readonly DicomTag StudyInstanceUid = new(0x0020, 0x000D);
    public static readonly DicomTag SeriesInstanceUid = new(0x0020, 0x000E);
    public static readonly DicomTag InstanceNumber = new(0x0020, 0x0013);
    public static readonly DicomTag ImagePositionPatient = new(0x0020, 0x0032);
    public static readonly DicomTag ImageOrientationPatient = new(0x0020, 0x0037);
    public static readonly DicomTag Laterality = new(0x0020, 0x0060);
    public static readonly DicomTag ImageLaterality = new(0x0020, 0x0062);
    public static readonly DicomTag SliceLocation = new(0x0020, 0x1041);
    public static readonly DicomTag PlanePositionSequence = new(0x0020, 0x9113);
    public static readonly DicomTag PlaneOrientationSequence = new(0x0020, 0x9116);

    public static readonly DicomTag SamplesPerPixel = new(0x0028, 0x0002);
    public static readonly DicomTag PhotometricInterpretation = new(0x0028, 0x0004);
    public static readonly DicomTag PlanarConfiguration = new(0x0028, 0x0006);
    public static readonly DicomTag NumberOfFrames = new(0x0028, 0x0008);
    public static readonly DicomTag Rows = new(0x0028, 0x0010);
    public static readonly DicomTag Columns = new(0x0028, 0x0011);
    public static readonly DicomTag PixelSpacing = new(0x0028, 0x0030);
    public static readonly DicomTag BitsAllocated = new(0x0028, 0x0100);
    public static readonly DicomTag BitsStored = new(0x0028, 0x0101);
    public static readonly DicomTag HighBit = new(0x0028, 0x0102);
    public static readonly DicomTag PixelRepresentation = new(0x0028, 0x0103);
    public static readonly DicomTag PixelPaddingValue = new(0x0028, 0x0120);
    public static readonly DicomTag PixelPaddingRangeLimit = new(0x0028, 0x0121);
    public static readonly DicomTag PixelMeasuresSequence = new(0x0028, 0x9110);
    public static readonly DicomTag WindowCenter = new(0x0028, 0x1050);
    public static readonly DicomTag WindowWidth = new(0x0028, 0x1051);
    public static readonly DicomTag RescaleIntercept = new(0x0028, 0x1052);
    public static readonly DicomTag RescaleSlope = new(0x0028, 0x1053);
    public static readonly DicomTag VoiLutFunction = new(0x0028, 0x1056);
    public static readonly DicomTag RedPaletteColorLookupTableDescriptor = new(0x0028, 0x1101);
    public static readonly DicomTag GreenPaletteColorLookupTableDescriptor = new(0x0028, 0x1102);
    public static readonly DicomTag BluePaletteColorLookupTableDescriptor = new(0x0028, 0x1103);
    public static readonly DicomTag RedPaletteColorLookupTableData = new(0x0028, 0x1201);
    public static readonly DicomTag GreenPaletteColorLookupTableData = new(0x0028, 0x1202);
    public static readonly DicomTag BluePaletteColorLookupTableData = new(0x0028, 0x1203);
    public static readonly DicomTag SegmentedRedPaletteColorLookupTableData = new(0x0028, 0x1221);
    public static readonly DicomTag SegmentedGreenPaletteColorLookupTableData = new(0x0028, 0x1222);
    public static readonly DicomTag SegmentedBluePaletteColorLookupTableData = new(0x0028, 0x1223);
    public static readonly DicomTag FrameVoiLutSequence = new(0x0028, 0x9132);
    public static readonly DicomTag PixelValueTransformationSequence = new(0x0028, 0x9145);

    public static readonly DicomTag SharedFunctionalGroupsSequence = new(0x5200, 0x9229);
    public static readonly DicomTag PerFrameFunctionalGroupsSequence = new(0x5200, 0x9230);

    public static readonly DicomTag ExtendedOffsetTable = new(0x7FE0, 0x0001);
    public static readonly DicomTag ExtendedOffsetTableLengths = new(0x7FE0, 0x0002);
    public static readonly DicomTag FloatPixelData = new(0x7FE0, 0x0008);
    public static readonly DicomTag DoubleFloatPixelData = new(0x7FE0, 0x0009);
    public static readonly DicomTag PixelData = new(0x7FE0, 0x0010);
}
