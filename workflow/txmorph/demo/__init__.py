"""Stage `demo` (workflow/rules/demo.smk): the synthetic demo sections: their layout, cells and
spots, and the microscope that renders their DAPI image.
"""
