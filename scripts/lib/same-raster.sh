# Sourced by tests/deploy/slurm_shards.sh and scripts/bundle-check.sh: compares two rasters
# pixel for pixel and by georeferencing. The caller defines say, fail and $work (scratch).

# Size, geotransform, CRS, band count, first band's type and nodata of raster $1.
raster_georef() {
    gdalinfo -json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
b = d["bands"][0]
print(d["size"], d["geoTransform"], d["coordinateSystem"]["wkt"], len(d["bands"]), b["type"], b.get("noDataValue"))'
}

# same_raster REF GOT NAME REF_LABEL: fails unless GOT exists and has REF's georeferencing
# and raw pixels; REF_LABEL names REF in the messages ("the unsharded run").
same_raster() {
    local ref="$1" got="$2" name="$3" label="$4" diffs total
    [ -f "$got" ] || fail "$name: $got was not written"
    [ "$(raster_georef "$ref")" = "$(raster_georef "$got")" ] ||
        fail "$name: georeferencing differs from $label: $(raster_georef "$ref" | head -c 200) vs $(raster_georef "$got" | head -c 200)"
    gdal_translate -q -of ENVI "$ref" "$work/ref.raw"
    gdal_translate -q -of ENVI "$got" "$work/got.raw"
    total=$(stat -c %s "$work/ref.raw")
    if ! cmp -s "$work/ref.raw" "$work/got.raw"; then
        diffs=$(cmp -l "$work/ref.raw" "$work/got.raw" | wc -l || true)
        fail "$name: $diffs of $total pixels differ from $label"
    fi
    say "$name: identical to $label ($total pixels, same georeferencing)"
}
